package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Spool bucket and key names.
var (
	bucketAlerts = []byte("alerts")
	bucketMeta   = []byte("meta")
	keyTokens    = []byte("tokens")
	keyScopes    = []byte("scopes")
)

// ErrSpoolFull is returned by Spool.Put when the alerts would exceed the
// spool's count or size limit.
var ErrSpoolFull = errors.New("the spool is full")

// Spool is a bounded, fsync'd on-disk queue of alerts (a bbolt file) that
// holds what the API server could not take. Keys are arrival sequence
// numbers, so the drainer replays in arrival order. Only one process may
// open a spool file at a time.
type Spool struct {
	db       *bolt.DB
	maxCount int
	maxBytes int64
	// share is the most alerts one credential may hold (0: no share), so
	// a noisy or hostile token cannot fill the spool for the others.
	share int

	mu           sync.Mutex
	count        int
	bytes        int64
	byCredential map[string]usage
}

// spooled is one alert read back from the spool.
type spooled struct {
	key   uint64
	size  int64
	alert *Alert
	err   error // set when the stored value cannot be decoded
}

// OpenSpool opens (creating it and its directory if needed) the spool at
// path, limited to maxCount alerts and maxBytes of encoded alerts.
func OpenSpool(path string, maxCount int, maxBytes int64) (*Spool, error) {
	if maxCount < 1 || maxBytes < 1 {
		return nil, fmt.Errorf("spool limits must be positive (max alerts %d, max bytes %d)", maxCount, maxBytes)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the spool directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening the spool %s: %w", path, err)
	}
	s := &Spool{db: db, maxCount: maxCount, maxBytes: maxBytes, byCredential: map[string]usage{}}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	spoolDepth.Set(float64(s.count))
	return s, nil
}

// init creates the buckets and counts what a previous run left behind.
func (s *Spool) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAlerts, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating spool bucket %s: %w", name, err)
			}
		}
		return tx.Bucket(bucketAlerts).ForEach(func(_, v []byte) error {
			var a Alert
			_ = json.Unmarshal(v, &a) // an undecodable alert counts for no credential
			s.count++
			s.bytes += int64(len(v))
			s.byCredential[a.budgetKey()] = s.byCredential[a.budgetKey()].plus(usage{n: 1, bytes: int64(len(v))})
			return nil
		})
	})
}

// SetDetectorShare limits each credential to a fraction (0 < f ≤ 1) of the
// spool's alerts; 0 or 1 removes the limit.
func (s *Spool) SetDetectorShare(f float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.share = 0
	if f > 0 && f < 1 {
		s.share = max(1, int(f*float64(s.maxCount)))
	}
}

// credentialUsage is how many alerts of a credential wait in the spool,
// and their bytes.
func (s *Spool) credentialUsage(key string) usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byCredential[key]
}

// Close closes the spool file.
func (s *Spool) Close() error { return s.db.Close() }

// Depth is the number of alerts waiting.
func (s *Spool) Depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Put stores alerts in one transaction, in order, and returns once it is
// synced to disk: all of them are durable, or none. Concurrent calls share
// one fsync.
func (s *Spool) Put(alerts []*Alert) error {
	values := make([][]byte, len(alerts))
	var size int64
	perCredential := map[string]usage{}
	for i, a := range alerts {
		v, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encoding alert for the spool: %w", err)
		}
		values[i], size = v, size+int64(len(v))
		perCredential[a.budgetKey()] = perCredential[a.budgetKey()].plus(usage{n: 1, bytes: int64(len(v))})
	}
	if err := s.reserve(perCredential, len(values), size); err != nil {
		return err
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		for _, v := range values {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.release(perCredential, len(values), size)
		return fmt.Errorf("writing to the spool: %w", err)
	}
	return nil
}

// reserve claims room for n alerts of size bytes (perCredential of them
// per credential), or fails with ErrSpoolFull when the spool or a
// credential's share of it would overflow.
func (s *Spool) reserve(perCredential map[string]usage, n int, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count+n > s.maxCount || s.bytes+size > s.maxBytes {
		return fmt.Errorf("%w (%d alerts, %d bytes; limits %d alerts, %d bytes)", ErrSpoolFull, s.count, s.bytes, s.maxCount, s.maxBytes)
	}
	for key, u := range perCredential {
		if held := s.byCredential[key].n; s.share > 0 && held+u.n > s.share {
			return fmt.Errorf("%w for credential %s: it holds %d alerts, its share is %d", ErrSpoolFull, key, held, s.share)
		}
	}
	s.count, s.bytes = s.count+n, s.bytes+size
	for key, u := range perCredential {
		s.byCredential[key] = s.byCredential[key].plus(u)
	}
	spoolDepth.Set(float64(s.count))
	return nil
}

// release returns room claimed by reserve or freed by delete.
func (s *Spool) release(perCredential map[string]usage, n int, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count, s.bytes = s.count-n, s.bytes-size
	for key, u := range perCredential {
		if left := s.byCredential[key].plus(usage{n: -u.n, bytes: -u.bytes}); left.n > 0 {
			s.byCredential[key] = left
		} else {
			delete(s.byCredential, key)
		}
	}
	spoolDepth.Set(float64(s.count))
}

// peek returns up to n of the oldest alerts, oldest first.
func (s *Spool) peek(n int) ([]spooled, error) {
	var out []spooled
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAlerts).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			item := spooled{key: binary.BigEndian.Uint64(k), size: int64(len(v)), alert: &Alert{}}
			if err := json.Unmarshal(v, item.alert); err != nil {
				item.alert, item.err = nil, fmt.Errorf("decoding spooled alert %d: %w", item.key, err)
			}
			out = append(out, item)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the spool: %w", err)
	}
	return out, nil
}

// delete removes drained alerts in one synced transaction.
func (s *Spool) delete(items []spooled) error {
	if len(items) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		for _, it := range items {
			if err := b.Delete(seqKey(it.key)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting drained alerts from the spool: %w", err)
	}
	var size int64
	perCredential := map[string]usage{}
	for _, it := range items {
		size += it.size
		key := ""
		if it.alert != nil {
			key = it.alert.budgetKey()
		}
		perCredential[key] = perCredential[key].plus(usage{n: 1, bytes: it.size})
	}
	s.release(perCredential, len(items), size)
	return nil
}

// oldestAge is how long the oldest waiting alert has waited (0 when empty).
func (s *Spool) oldestAge(now time.Time) time.Duration {
	items, err := s.peek(1)
	if err != nil || len(items) == 0 || items[0].alert == nil {
		return 0
	}
	return now.Sub(items[0].alert.ReceivedAt)
}

// saveTokens caches the token hashes and scopes, so a restart while the
// API server is unreachable can still authenticate and scope senders.
func (s *Spool) saveTokens(set TokenSet, scopes Scopes) error {
	tokens, err := json.Marshal(set.encode())
	if err != nil {
		return err
	}
	scoped, err := json.Marshal(scopes)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyTokens, tokens); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyScopes, scoped)
	})
}

// loadTokens reads the cached token hashes and scopes; ok is false when
// none are cached.
func (s *Spool) loadTokens() (set TokenSet, scopes Scopes, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyTokens)
		if v == nil {
			return nil
		}
		var m map[string][]string
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decoding cached token hashes: %w", err)
		}
		if v := tx.Bucket(bucketMeta).Get(keyScopes); v != nil {
			if err := json.Unmarshal(v, &scopes); err != nil {
				return fmt.Errorf("decoding cached scopes: %w", err)
			}
		}
		set, ok = decodeTokenSet(m), true
		return nil
	})
	return set, scopes, ok, err
}

// seqKey encodes a sequence number as a big-endian key, so keys sort in arrival order.
func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}
