// name: vulnerable-internet-facing-hosts
// description: Hosts reachable from the internet (public, open to the internet, a public IP or flows from a
//   public address) that carry a serious CVE and behave anomalously: the likeliest initial-access points.
// param: min_cvss = 7.0  lowest CVSS v3 score of the vulnerability
// param: min_score = 0.9  lowest anomaly_score of the host
// param: limit = 25  rows to return
WITH 7.0 AS min_cvss, 0.9 AS min_score // @params
MATCH (vm:VM)-[:HAS_VULN]->(cve:CVE)
WHERE coalesce(cve.cvss, 0) >= min_cvss
  AND (vm.public = true OR vm.open_to_internet = true
       OR EXISTS { MATCH (vm)-[:HAS_IP]->(:IP {public: true}) }
       OR EXISTS { MATCH (:IP {public: true})-[:CONNECTS_TO]->(:IP)<-[:HAS_IP]-(vm) })
WITH vm, min_score, collect(DISTINCT cve.uid) AS cves, max(cve.cvss) AS max_cvss
WHERE coalesce(vm.anomaly_score, 0) >= min_score
RETURN vm.uid AS host, vm.name AS name, round(vm.anomaly_score, 4) AS score, max_cvss, cves,
       vm.anomaly_reasons AS reasons
ORDER BY vm.anomaly_score DESC, vm.anomaly_raw DESC, max_cvss DESC, host
LIMIT 25 // @limit
