// Package clouds knows each cloud boundary through the Cloud interface, whose families (azure,
// aws, gcp, local) live in the packages below it and are listed in clouds/catalog. It checks a
// fleet's targets and backends against their boundaries, proves a boundary's identity with the
// cloud's own SDK (preflight), and builds the exact environment a Terraform run of one target sees.
package clouds
