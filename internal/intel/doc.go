// Package intel is FIDO's threat intelligence: it fetches indicator feeds
// (HTTP(S), ConfigMap or Secret keys, inline lists), parses them (plain
// one-per-line lists, CSV, STIX 2.1 bundles) into compact per-feed sets, and
// keeps every feed's set in one in-memory Index that the enrichers query.
//
// Every input is treated as hostile: entries are bounded in size, invalid
// entries are counted and sampled rather than failing the feed, and secrets
// (header values, URL credentials and query strings) never appear in errors.
package intel
