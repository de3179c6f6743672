// name: internet-to-database-paths
// description: BloodHound-style shortest network paths from a public (internet) IP to a database, following
//   only relationships that carry traffic, in the direction traffic flows: flows (CONNECTS_TO) gnnsec
//   scored as unusual, load balancer and gateway forwarding (ROUTES_TO), an address to the host that holds
//   it (HAS_IP, walked backwards), a host to what runs on it (RUNS_ON, walked backwards), and hosts in the
//   same subnet (a subnet's CONTAINS of a host, never of another subnet, never from a VPC). Placement is
//   never a path: not an account holding both ends, not a VPC holding both subnets. Only IPs with an
//   unusual flow of their own start a search, which keeps the hunt fast on large estates. Shortest paths
//   first; ties go to the more unusual path (its worst flow), then the database's and the address's scores.
// param: min_edge_anomaly = 0.5  every flow on the path must be at least this unusual
// param: max_hops = 6  longest path considered (at most 6)
// param: limit = 25  rows to return
WITH 0.5 AS min_edge_anomaly, 6 AS max_hops // @params
MATCH (ip:IP {public: true})-[first:CONNECTS_TO]->()
WHERE first.edge_anomaly >= min_edge_anomaly
WITH DISTINCT ip, min_edge_anomaly, max_hops
MATCH path = SHORTEST 1 (ip)((a)-[r:CONNECTS_TO|ROUTES_TO|HAS_IP|RUNS_ON|CONTAINS]-(b)
      WHERE (type(r) = 'CONNECTS_TO' AND startNode(r) = a AND coalesce(r.edge_anomaly, 0.0) >= min_edge_anomaly)
         OR (type(r) = 'ROUTES_TO' AND startNode(r) = a)
         OR (type(r) IN ['HAS_IP', 'RUNS_ON'] AND startNode(r) = b)
         OR (type(r) = 'CONTAINS' AND startNode(r):Subnet AND coalesce(startNode(r).kind, '') <> 'vpc'
             AND NOT endNode(r):Subnet)){1,6}(db:Database)
WHERE length(path) <= max_hops
WITH ip, db, path,
     reduce(m = 0.0, r IN relationships(path) | CASE WHEN coalesce(r.edge_anomaly, 0.0) > m
                                                     THEN r.edge_anomaly ELSE m END) AS worst
RETURN ip.uid AS internet_ip, db.uid AS database, length(path) AS hops, round(worst, 4) AS max_edge_anomaly,
       [n IN nodes(path) | labels(n)[0] + ':' + coalesce(n.name, n.uid)] AS steps,
       [r IN relationships(path) | type(r)] AS relationships
ORDER BY hops, worst DESC, coalesce(db.anomaly_score, 0.0) DESC, coalesce(ip.anomaly_score, 0.0) DESC,
         coalesce(db.anomaly_raw, 0.0) DESC, coalesce(ip.anomaly_raw, 0.0) DESC
LIMIT 25 // @limit
