// name: score-history
// description: One entity's score, window by window, oldest first: the SCORED history each scoring run
//   keeps for the nodes it scored above its floor or found anomalous.
// param: uid = ''  the entity's uid (an ARN, resource id, IP address, ...)
// param: limit = 90  most recent windows to show
WITH '' AS uid // @params
MATCH (r:ScoringRun)-[s:SCORED]->(n {uid: uid})
WITH r, s, n
ORDER BY r.window_start DESC
LIMIT 90 // @limit
RETURN labels(n)[0] AS label, r.window_start AS window_start, r.window_end AS window_end, round(s.score, 4) AS score,
       s.rank AS rank, s.anomalous AS anomalous, s.reasons AS reasons, r.run_id AS run
ORDER BY window_start
