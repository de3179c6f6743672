// name: top-anomalous-relationships
// description: Individual relationships the DistMult decoder finds least plausible (activity only):
//   who did what to which resource, when, that does not fit the learned structure.
// param: min_edge_anomaly = 0.9  lowest edge_anomaly to show
// param: limit = 50  rows to return
WITH 0.9 AS min_edge_anomaly // @params
MATCH (a)-[r]->(b)
WHERE r.edge_anomaly >= min_edge_anomaly AND r.window IS NOT NULL
RETURN labels(a)[0] + ':' + a.uid AS source, type(r) AS relationship, labels(b)[0] + ':' + b.uid AS target,
       r.window AS window, r.count AS events, r.actions[..5] AS actions, round(r.edge_anomaly, 4) AS edge_anomaly
ORDER BY edge_anomaly DESC, events DESC
LIMIT 50 // @limit
