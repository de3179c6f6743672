// gnnsec master schema, version 1. Generated from gnnsec/schema.py, keep them in sync
// (tests/test_schema.py fails when they differ). Every statement is idempotent.

CREATE CONSTRAINT user_uid IF NOT EXISTS FOR (n:User) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT vm_uid IF NOT EXISTS FOR (n:VM) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT ip_uid IF NOT EXISTS FOR (n:IP) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT role_uid IF NOT EXISTS FOR (n:Role) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT cve_uid IF NOT EXISTS FOR (n:CVE) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT container_uid IF NOT EXISTS FOR (n:Container) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT cloudaccount_uid IF NOT EXISTS FOR (n:CloudAccount) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT subnet_uid IF NOT EXISTS FOR (n:Subnet) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT bucket_uid IF NOT EXISTS FOR (n:Bucket) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT function_uid IF NOT EXISTS FOR (n:Function) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT cluster_uid IF NOT EXISTS FOR (n:Cluster) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT pod_uid IF NOT EXISTS FOR (n:Pod) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT database_uid IF NOT EXISTS FOR (n:Database) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT loadbalancer_uid IF NOT EXISTS FOR (n:LoadBalancer) REQUIRE n.uid IS UNIQUE;
CREATE CONSTRAINT gateway_uid IF NOT EXISTS FOR (n:Gateway) REQUIRE n.uid IS UNIQUE;

CREATE INDEX user_last_seen IF NOT EXISTS FOR (n:User) ON (n.last_seen);
CREATE INDEX vm_last_seen IF NOT EXISTS FOR (n:VM) ON (n.last_seen);
CREATE INDEX ip_last_seen IF NOT EXISTS FOR (n:IP) ON (n.last_seen);
CREATE INDEX role_last_seen IF NOT EXISTS FOR (n:Role) ON (n.last_seen);
CREATE INDEX cve_last_seen IF NOT EXISTS FOR (n:CVE) ON (n.last_seen);
CREATE INDEX container_last_seen IF NOT EXISTS FOR (n:Container) ON (n.last_seen);
CREATE INDEX cloudaccount_last_seen IF NOT EXISTS FOR (n:CloudAccount) ON (n.last_seen);
CREATE INDEX subnet_last_seen IF NOT EXISTS FOR (n:Subnet) ON (n.last_seen);
CREATE INDEX bucket_last_seen IF NOT EXISTS FOR (n:Bucket) ON (n.last_seen);
CREATE INDEX function_last_seen IF NOT EXISTS FOR (n:Function) ON (n.last_seen);
CREATE INDEX cluster_last_seen IF NOT EXISTS FOR (n:Cluster) ON (n.last_seen);
CREATE INDEX pod_last_seen IF NOT EXISTS FOR (n:Pod) ON (n.last_seen);
CREATE INDEX database_last_seen IF NOT EXISTS FOR (n:Database) ON (n.last_seen);
CREATE INDEX loadbalancer_last_seen IF NOT EXISTS FOR (n:LoadBalancer) ON (n.last_seen);
CREATE INDEX gateway_last_seen IF NOT EXISTS FOR (n:Gateway) ON (n.last_seen);

CREATE INDEX user_anomaly_score IF NOT EXISTS FOR (n:User) ON (n.anomaly_score);
CREATE INDEX vm_anomaly_score IF NOT EXISTS FOR (n:VM) ON (n.anomaly_score);
CREATE INDEX ip_anomaly_score IF NOT EXISTS FOR (n:IP) ON (n.anomaly_score);
CREATE INDEX role_anomaly_score IF NOT EXISTS FOR (n:Role) ON (n.anomaly_score);
CREATE INDEX cve_anomaly_score IF NOT EXISTS FOR (n:CVE) ON (n.anomaly_score);
CREATE INDEX container_anomaly_score IF NOT EXISTS FOR (n:Container) ON (n.anomaly_score);
CREATE INDEX cloudaccount_anomaly_score IF NOT EXISTS FOR (n:CloudAccount) ON (n.anomaly_score);
CREATE INDEX subnet_anomaly_score IF NOT EXISTS FOR (n:Subnet) ON (n.anomaly_score);
CREATE INDEX bucket_anomaly_score IF NOT EXISTS FOR (n:Bucket) ON (n.anomaly_score);
CREATE INDEX function_anomaly_score IF NOT EXISTS FOR (n:Function) ON (n.anomaly_score);
CREATE INDEX cluster_anomaly_score IF NOT EXISTS FOR (n:Cluster) ON (n.anomaly_score);
CREATE INDEX pod_anomaly_score IF NOT EXISTS FOR (n:Pod) ON (n.anomaly_score);
CREATE INDEX database_anomaly_score IF NOT EXISTS FOR (n:Database) ON (n.anomaly_score);
CREATE INDEX loadbalancer_anomaly_score IF NOT EXISTS FOR (n:LoadBalancer) ON (n.anomaly_score);
CREATE INDEX gateway_anomaly_score IF NOT EXISTS FOR (n:Gateway) ON (n.anomaly_score);

CREATE INDEX contains_edge_anomaly IF NOT EXISTS FOR ()-[r:CONTAINS]-() ON (r.edge_anomaly);
CREATE INDEX runs_on_edge_anomaly IF NOT EXISTS FOR ()-[r:RUNS_ON]-() ON (r.edge_anomaly);
CREATE INDEX deployed_on_edge_anomaly IF NOT EXISTS FOR ()-[r:DEPLOYED_ON]-() ON (r.edge_anomaly);
CREATE INDEX has_vuln_edge_anomaly IF NOT EXISTS FOR ()-[r:HAS_VULN]-() ON (r.edge_anomaly);
CREATE INDEX grants_access_edge_anomaly IF NOT EXISTS FOR ()-[r:GRANTS_ACCESS]-() ON (r.edge_anomaly);
CREATE INDEX can_assume_edge_anomaly IF NOT EXISTS FOR ()-[r:CAN_ASSUME]-() ON (r.edge_anomaly);
CREATE INDEX has_ip_edge_anomaly IF NOT EXISTS FOR ()-[r:HAS_IP]-() ON (r.edge_anomaly);
CREATE INDEX routes_to_edge_anomaly IF NOT EXISTS FOR ()-[r:ROUTES_TO]-() ON (r.edge_anomaly);
CREATE INDEX triggers_edge_anomaly IF NOT EXISTS FOR ()-[r:TRIGGERS]-() ON (r.edge_anomaly);
CREATE INDEX assumes_role_edge_anomaly IF NOT EXISTS FOR ()-[r:ASSUMES_ROLE]-() ON (r.edge_anomaly);
CREATE INDEX access_edge_anomaly IF NOT EXISTS FOR ()-[r:ACCESS]-() ON (r.edge_anomaly);
CREATE INDEX start_vm_edge_anomaly IF NOT EXISTS FOR ()-[r:START_VM]-() ON (r.edge_anomaly);
CREATE INDEX stop_vm_edge_anomaly IF NOT EXISTS FOR ()-[r:STOP_VM]-() ON (r.edge_anomaly);
CREATE INDEX restart_vm_edge_anomaly IF NOT EXISTS FOR ()-[r:RESTART_VM]-() ON (r.edge_anomaly);
CREATE INDEX modifies_edge_anomaly IF NOT EXISTS FOR ()-[r:MODIFIES]-() ON (r.edge_anomaly);
CREATE INDEX authenticates_from_edge_anomaly IF NOT EXISTS FOR ()-[r:AUTHENTICATES_FROM]-() ON (r.edge_anomaly);
CREATE INDEX connects_to_edge_anomaly IF NOT EXISTS FOR ()-[r:CONNECTS_TO]-() ON (r.edge_anomaly);
CREATE INDEX cross_cloud_access_edge_anomaly IF NOT EXISTS FOR ()-[r:CROSS_CLOUD_ACCESS]-() ON (r.edge_anomaly);
CREATE INDEX lateral_movement_edge_anomaly IF NOT EXISTS FOR ()-[r:LATERAL_MOVEMENT]-() ON (r.edge_anomaly);
CREATE INDEX exploits_edge_anomaly IF NOT EXISTS FOR ()-[r:EXPLOITS]-() ON (r.edge_anomaly);

CREATE CONSTRAINT scoring_run_id IF NOT EXISTS FOR (r:ScoringRun) REQUIRE r.run_id IS UNIQUE;
CREATE INDEX scoring_run_window IF NOT EXISTS FOR (r:ScoringRun) ON (r.window_start);
CREATE CONSTRAINT ingested_batch_id IF NOT EXISTS FOR (b:IngestedBatch) REQUIRE b.batch_id IS UNIQUE;
