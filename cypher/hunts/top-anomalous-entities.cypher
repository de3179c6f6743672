// name: top-anomalous-entities
// description: Every scored entity (any label) flagged anomalous, most unusual first.
// param: min_score = 0.99  lowest anomaly_score to show
// param: limit = 50  rows to return
WITH 0.99 AS min_score // @params
MATCH (n)
WHERE n.anomaly_score >= min_score
RETURN labels(n)[0] AS label, n.uid AS uid, n.name AS name, round(n.anomaly_score, 4) AS score,
       n.anomaly_reasons AS reasons
ORDER BY n.anomaly_score DESC, n.anomaly_raw DESC, uid
LIMIT 50 // @limit
