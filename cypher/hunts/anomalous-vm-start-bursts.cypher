// name: anomalous-vm-start-bursts
// description: Principals that started many VMs in one aggregation window, unusual regions
//   highlighted: the footprint of crypto-mining with stolen credentials.
// param: min_starts = 5  fewest VM starts in one window
// param: limit = 25  rows to return
WITH 5 AS min_starts // @params
MATCH (p)-[r:START_VM]->(vm:VM)
WITH p, r.window AS window, min_starts, sum(r.count) AS starts, collect(DISTINCT vm.region) AS regions,
     collect(DISTINCT vm.instance_type) AS instance_types, max(coalesce(r.edge_anomaly, 0)) AS edge_anomaly
WHERE starts >= min_starts
RETURN labels(p)[0] AS label, p.uid AS principal, window, starts, regions, instance_types,
       round(edge_anomaly, 4) AS edge_anomaly, round(coalesce(p.anomaly_score, 0), 4) AS principal_score
ORDER BY coalesce(p.anomaly_score, 0) DESC, p.anomaly_raw DESC, starts DESC
LIMIT 25 // @limit
