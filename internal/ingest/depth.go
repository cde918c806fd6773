package ingest

// SpoolDepth is how many alerts wait in this replica's spool for the API
// server, and false when the server runs without a spool. Other servers of
// the manager (the console) show it.
func (s *Server) SpoolDepth() (int, bool) {
	if s.spool == nil {
		return 0, false
	}
	return s.spool.Depth(), true
}
