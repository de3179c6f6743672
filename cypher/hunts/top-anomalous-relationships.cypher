// name: top-anomalous-relationships
// description: Individual relationships the DistMult decoder finds least plausible (activity only):
//   who did what to which resource, when, that does not fit the learned structure. Ties go to the more
//   unusual endpoint (its calibrated, then raw, anomaly score), then to more events.
// param: min_edge_anomaly = 0.9  lowest edge_anomaly to show
// param: limit = 50  rows to return
WITH 0.9 AS min_edge_anomaly // @params
MATCH (a)-[r]->(b)
WHERE r.edge_anomaly >= min_edge_anomaly AND r.window IS NOT NULL
WITH a, r, b,
     CASE WHEN coalesce(a.anomaly_score, 0.0) >= coalesce(b.anomaly_score, 0.0) THEN a ELSE b END AS worse
RETURN labels(a)[0] + ':' + a.uid AS source, type(r) AS relationship, labels(b)[0] + ':' + b.uid AS target,
       r.window AS window, r.count AS events, r.actions[..5] AS actions, round(r.edge_anomaly, 4) AS edge_anomaly,
       round(coalesce(worse.anomaly_score, 0.0), 4) AS endpoint_score
ORDER BY r.edge_anomaly DESC, coalesce(worse.anomaly_score, 0.0) DESC, coalesce(worse.anomaly_raw, 0.0) DESC,
         events DESC
LIMIT 50 // @limit
