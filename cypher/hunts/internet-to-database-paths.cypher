// name: internet-to-database-paths
// description: BloodHound-style shortest paths from a public (internet) IP to a database, walking
//   only through relationships gnnsec scored as unusual, so each path is a story of an attack.
// param: min_edge_anomaly = 0.5  every hop on the path must be at least this unusual
// param: max_hops = 6  longest path considered
// param: limit = 25  rows to return
WITH 0.5 AS min_edge_anomaly, 6 AS max_hops // @params
MATCH (ip:IP {public: true}), (db:Database)
MATCH path = shortestPath((ip)-[*..8]-(db))
WHERE length(path) <= max_hops
  AND all(r IN relationships(path) WHERE coalesce(r.edge_anomaly, 0) >= min_edge_anomaly OR type(r) IN ['HAS_IP', 'CONTAINS', 'RUNS_ON', 'DEPLOYED_ON'])
  AND any(r IN relationships(path) WHERE coalesce(r.edge_anomaly, 0) >= min_edge_anomaly)
RETURN ip.uid AS internet_ip, db.uid AS database, length(path) AS hops,
       [n IN nodes(path) | labels(n)[0] + ':' + coalesce(n.name, n.uid)] AS steps,
       [r IN relationships(path) | type(r)] AS relationships
ORDER BY hops, database
LIMIT 25 // @limit
