package enrich

import "slices"

// sortedBounded sorts and de-duplicates items and keeps at most n of them.
func sortedBounded(items []string, n int) []string {
	if len(items) == 0 {
		return nil
	}
	items = slices.Compact(slices.Sorted(slices.Values(items)))
	if len(items) > n {
		items = items[:n]
	}
	return items
}
