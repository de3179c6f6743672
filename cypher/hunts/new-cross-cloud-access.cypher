// name: new-cross-cloud-access
// description: Cross-account / cross-cloud access first seen in the last days of the data, with the
//   principal's anomaly score: new trust paths between clouds are rare and worth a look.
// param: days = 2  how recent "new" is, counted back from the newest activity in the graph
// param: limit = 25  rows to return
WITH 2 AS days // @params
MATCH ()-[any:CROSS_CLOUD_ACCESS]->()
WITH days, max(any.last_seen) AS newest
MATCH (p)-[r:CROSS_CLOUD_ACCESS]->(target)
WITH p, target, days, newest, min(r.first_seen) AS first_seen, sum(r.count) AS events, max(coalesce(r.edge_anomaly, 0)) AS edge_anomaly
WHERE first_seen >= newest - duration({days: days})
RETURN labels(p)[0] AS label, p.uid AS principal, target.uid AS target, first_seen, events,
       round(edge_anomaly, 4) AS edge_anomaly, round(coalesce(p.anomaly_score, 0), 4) AS principal_score
ORDER BY edge_anomaly DESC, coalesce(p.anomaly_score, 0) DESC, p.anomaly_raw DESC
LIMIT 25 // @limit
