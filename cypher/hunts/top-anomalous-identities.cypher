// name: top-anomalous-identities
// description: Users and roles ranked by calibrated anomaly score, with the reasons gnnsec score wrote.
// param: min_score = 0.0  lowest anomaly_score to show
// param: limit = 25  rows to return
WITH 0.0 AS min_score // @params
MATCH (n)
WHERE (n:User OR n:Role) AND n.anomaly_score >= min_score
RETURN labels(n)[0] AS label, n.uid AS uid, n.name AS name, round(n.anomaly_score, 4) AS score,
       n.anomaly_rank AS rank, n.anomalous AS anomalous, n.anomaly_reasons AS reasons
ORDER BY n.anomaly_score DESC, n.anomaly_raw DESC, uid
LIMIT 25 // @limit
