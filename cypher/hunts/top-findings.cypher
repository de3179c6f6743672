// name: top-findings
// description: The overall top list: every entity with a latest score (the newest window that scored it),
//   any label, most unusual first; ties in the calibrated score go to the higher raw score.
// param: limit = 25  rows to return
WITH 1 AS no_params // @params
MATCH (n)
WHERE n.anomaly_score IS NOT NULL
RETURN labels(n)[0] AS label, n.uid AS uid, round(n.anomaly_score, 4) AS score, n.anomalous AS anomalous,
       n.anomaly_reasons AS reasons, n.score_window AS score_window
ORDER BY n.anomaly_score DESC, n.anomaly_raw DESC, uid
LIMIT 25 // @limit
