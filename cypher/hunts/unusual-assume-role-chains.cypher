// name: unusual-assume-role-chains
// description: Chains of two or more AssumeRole hops in which at least one hop is unusual
//   (edge_anomaly above the threshold): the classic credential-pivot path of a stolen key. Ties go to the
//   principal that scored higher (calibrated, then raw), then to longer chains.
// param: min_edge_anomaly = 0.8  a hop at least this unusual makes the chain interesting
// param: limit = 25  rows to return
WITH 0.8 AS min_edge_anomaly // @params
MATCH path = (start)-[:ASSUMES_ROLE*2..4]->(last:Role)
WHERE NOT (start)<-[:ASSUMES_ROLE]-()
  AND any(r IN relationships(path) WHERE r.edge_anomaly >= min_edge_anomaly)
WITH path, start, last, reduce(m = 0.0, r IN relationships(path) | CASE WHEN r.edge_anomaly > m THEN r.edge_anomaly ELSE m END) AS worst
RETURN start.uid AS principal, [n IN nodes(path) | n.uid] AS chain, length(path) AS hops,
       round(worst, 4) AS max_edge_anomaly, coalesce(start.anomaly_score, 0) AS principal_score
ORDER BY worst DESC, principal_score DESC, coalesce(start.anomaly_raw, 0.0) DESC, hops DESC
LIMIT 25 // @limit
