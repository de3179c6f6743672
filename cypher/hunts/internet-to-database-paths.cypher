// name: internet-to-database-paths
// description: BloodHound-style shortest paths from a public (internet) IP to a database, through
//   relationships gnnsec scored as unusual (placement edges such as HAS_IP and CONTAINS may be walked
//   freely): each path is the story of an attack. Only IPs with an unusual relationship of their own
//   start a search, which keeps the hunt fast on large estates.
// param: min_edge_anomaly = 0.5  every activity hop on the path must be at least this unusual
// param: max_hops = 6  longest path considered
// param: limit = 25  rows to return
WITH 0.5 AS min_edge_anomaly, 6 AS max_hops // @params
MATCH (ip:IP {public: true})-[first]-()
WHERE first.edge_anomaly >= min_edge_anomaly
WITH DISTINCT ip, min_edge_anomaly, max_hops
MATCH (db:Database)
MATCH path = shortestPath((ip)-[*..6]-(db))
WHERE length(path) <= max_hops
  AND all(r IN relationships(path) WHERE coalesce(r.edge_anomaly, 0) >= min_edge_anomaly
          OR type(r) IN ['HAS_IP', 'CONTAINS', 'RUNS_ON', 'DEPLOYED_ON'])
RETURN ip.uid AS internet_ip, db.uid AS database, length(path) AS hops,
       [n IN nodes(path) | labels(n)[0] + ':' + coalesce(n.name, n.uid)] AS steps,
       [r IN relationships(path) | type(r)] AS relationships
ORDER BY hops, database, internet_ip
LIMIT 25 // @limit
