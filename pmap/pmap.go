// Package pmap is a persistent (immutable) hash map shared by the
// replicated state (raftstore), the switch's view and the resolver's
// zones: a change makes a new version in O(log n) time and memory and
// leaves the old one valid, so the control plane can publish a new
// version per change while the data path reads the old one without locks.
package pmap

import (
	"encoding/binary"
	"hash/maphash"
	"iter"
	"net/netip"
	"slices"
)

// Map is a persistent (immutable) hash map: With and Without return a new
// Map that shares everything but the path to the changed entry with the
// old one, so a change costs O(log n) time and memory, and every earlier
// Map stays valid and unchanged. It is a hash trie: each level of interior
// nodes consumes trieBits bits of the key's hash; a leaf holds up to
// trieLeaf entries (any number at the last level, where hashes are equal).
//
// The zero value is an empty map. A pmap is never modified after it is
// made, so any number of goroutines may read it. Iteration order is the
// order of the hashes, which differ between processes: like a Go map, it
// is not an order to rely on.
type Map[K comparable, V any] struct {
	root *trieNode[K, V]
	n    int
}

const (
	trieBits     = 5
	trieFanout   = 1 << trieBits
	trieLeaf     = 8
	trieMaxDepth = 64 / trieBits
)

// trieSeed seeds the hashes of every Map of this process.
var trieSeed = maphash.MakeSeed()

// trieNode is an interior node (kids != nil) or a leaf (entries).
type trieNode[K comparable, V any] struct {
	kids    *[trieFanout]*trieNode[K, V]
	entries []trieEntry[K, V]
}

type trieEntry[K comparable, V any] struct {
	hash uint64
	key  K
	val  V
}

// trieHash hashes k. Keys of type uint64, string and netip.Addr take a
// fast path (a lookup on the switch's data path hashes one per table):
// maphash.Comparable costs about 15 ns on this kind of machine, and on a
// netip.Addr (it holds a pointer) it would also move the key to the heap,
// which a lookup on the data path must not do. Addresses that differ only
// in their IPv6 zone share a hash and are told apart by ==.
func trieHash[K comparable](k K) uint64 {
	switch k := any(k).(type) {
	case uint64:
		return maphash.Comparable(trieSeed, k)
	case string:
		return maphash.String(trieSeed, k)
	case netip.Addr:
		if k.Is4() {
			a := k.As4()
			return maphash.Comparable(trieSeed, 1<<32|uint64(binary.BigEndian.Uint32(a[:])))
		}
		b := k.As16()
		hi := maphash.Comparable(trieSeed, binary.BigEndian.Uint64(b[:8]))
		return hi*0x9e3779b97f4a7c15 ^ maphash.Comparable(trieSeed, binary.BigEndian.Uint64(b[8:]))
	}
	return maphash.Comparable(trieSeed, k)
}

// slot returns the child of an interior node at depth that hash h goes to.
func slot(h uint64, depth int) int { return int(h >> (depth * trieBits) & (trieFanout - 1)) }

// Len returns the number of entries.
func (m Map[K, V]) Len() int { return m.n }

// Get returns the value of k.
func (m Map[K, V]) Get(k K) (V, bool) {
	h := trieHash(k)
	n := m.root
	for depth := 0; n != nil; depth++ {
		if n.kids == nil {
			for _, e := range n.entries {
				if e.hash == h && e.key == k {
					return e.val, true
				}
			}
			break
		}
		n = n.kids[slot(h, depth)]
	}
	var zero V
	return zero, false
}

// Has reports whether k is in m.
func (m Map[K, V]) Has(k K) bool {
	_, ok := m.Get(k)
	return ok
}

// With returns m with k set to v.
func (m Map[K, V]) With(k K, v V) Map[K, V] {
	root, added := trieSet(m.root, 0, trieEntry[K, V]{hash: trieHash(k), key: k, val: v})
	if added {
		return Map[K, V]{root, m.n + 1}
	}
	return Map[K, V]{root, m.n}
}

// Set sets k to v in m itself, changing its nodes in place. Only for a
// map being built that no one else holds yet (no version of it was
// copied or read): it breaks every copy.
func (m *Map[K, V]) Set(k K, v V) {
	var added bool
	m.root, added = trieSetInPlace(m.root, 0, trieEntry[K, V]{hash: trieHash(k), key: k, val: v})
	if added {
		m.n++
	}
}

// Trim gives every leaf of m, built with set, a slice without spare
// capacity: set grows leaves by append, which leaves up to half of a
// leaf's slice unused. Like set, only for a map no one else holds yet.
func (m *Map[K, V]) Trim() { trieTrim(m.root) }

func trieTrim[K comparable, V any](n *trieNode[K, V]) {
	switch {
	case n == nil:
	case n.kids != nil:
		for _, c := range n.kids {
			trieTrim(c)
		}
	case cap(n.entries) > len(n.entries):
		n.entries = append(make([]trieEntry[K, V], 0, len(n.entries)), n.entries...)
	}
}

// Without returns m without k.
func (m Map[K, V]) Without(k K) Map[K, V] {
	root, removed := trieDelete(m.root, 0, trieHash(k), k)
	if !removed {
		return m
	}
	return Map[K, V]{root, m.n - 1}
}

// All yields every entry once, in no particular order.
func (m Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) { trieWalk(m.root, yield) }
}

// Same reports whether m and o are the same version of a map (one was made
// from the other without a change, or both are empty). Equal contents
// built separately are not the same.
func (m Map[K, V]) Same(o Map[K, V]) bool { return m.root == o.root }

func trieWalk[K comparable, V any](n *trieNode[K, V], yield func(K, V) bool) bool {
	if n == nil {
		return true
	}
	if n.kids == nil {
		for _, e := range n.entries {
			if !yield(e.key, e.val) {
				return false
			}
		}
		return true
	}
	for _, c := range n.kids {
		if !trieWalk(c, yield) {
			return false
		}
	}
	return true
}

// trieSet returns a copy of the subtree n at depth with e set, and whether
// e's key was new. n itself is not modified.
func trieSet[K comparable, V any](n *trieNode[K, V], depth int, e trieEntry[K, V]) (*trieNode[K, V], bool) {
	if n == nil {
		return &trieNode[K, V]{entries: []trieEntry[K, V]{e}}, true
	}
	if n.kids != nil {
		kids := *n.kids
		i := slot(e.hash, depth)
		c, added := trieSet(kids[i], depth+1, e)
		kids[i] = c
		return &trieNode[K, V]{kids: &kids}, added
	}
	for i, o := range n.entries {
		if o.hash == e.hash && o.key == e.key {
			entries := append([]trieEntry[K, V](nil), n.entries...)
			entries[i] = e
			return &trieNode[K, V]{entries: entries}, false
		}
	}
	if len(n.entries) < trieLeaf || depth == trieMaxDepth {
		entries := make([]trieEntry[K, V], len(n.entries), len(n.entries)+1)
		copy(entries, n.entries)
		return &trieNode[K, V]{entries: append(entries, e)}, true
	}
	// A full leaf above the last level becomes an interior node.
	split := &trieNode[K, V]{kids: new([trieFanout]*trieNode[K, V])}
	all := make([]trieEntry[K, V], 0, len(n.entries)+1)
	for _, o := range append(append(all, n.entries...), e) {
		i := slot(o.hash, depth)
		split.kids[i], _ = trieSet(split.kids[i], depth+1, o)
	}
	return split, true
}

// trieSetInPlace sets e in the subtree n at depth, changing n; it returns
// the subtree's root (new when n was nil or split) and whether e's key was
// new.
func trieSetInPlace[K comparable, V any](n *trieNode[K, V], depth int, e trieEntry[K, V]) (*trieNode[K, V], bool) {
	if n == nil {
		return &trieNode[K, V]{entries: []trieEntry[K, V]{e}}, true
	}
	if n.kids != nil {
		i := slot(e.hash, depth)
		var added bool
		n.kids[i], added = trieSetInPlace(n.kids[i], depth+1, e)
		return n, added
	}
	for i, o := range n.entries {
		if o.hash == e.hash && o.key == e.key {
			n.entries[i] = e
			return n, false
		}
	}
	if len(n.entries) < trieLeaf || depth == trieMaxDepth {
		n.entries = append(n.entries, e)
		return n, true
	}
	split := &trieNode[K, V]{kids: new([trieFanout]*trieNode[K, V])}
	for _, o := range append(n.entries, e) {
		i := slot(o.hash, depth)
		split.kids[i], _ = trieSetInPlace(split.kids[i], depth+1, o)
	}
	return split, true
}

// trieDelete returns a copy of the subtree n at depth without key k (nil
// when it is left empty), and whether k was there. n is not modified.
func trieDelete[K comparable, V any](n *trieNode[K, V], depth int, h uint64, k K) (*trieNode[K, V], bool) {
	if n == nil {
		return nil, false
	}
	if n.kids != nil {
		i := slot(h, depth)
		c, removed := trieDelete(n.kids[i], depth+1, h, k)
		if !removed {
			return n, false
		}
		kids := *n.kids
		kids[i] = c
		for _, o := range kids {
			if o != nil {
				return &trieNode[K, V]{kids: &kids}, true
			}
		}
		return nil, true
	}
	for i, o := range n.entries {
		if o.hash == h && o.key == k {
			if len(n.entries) == 1 {
				return nil, true
			}
			entries := make([]trieEntry[K, V], 0, len(n.entries)-1)
			entries = append(append(entries, n.entries[:i]...), n.entries[i+1:]...)
			return &trieNode[K, V]{entries: entries}, true
		}
	}
	return n, false
}

// Diff calls change for every key whose value differs between m and o
// (old is nil for a key only in o, new nil for a key only in m). Subtrees
// the two maps share are skipped, so comparing two versions one change
// apart costs O(log n). same compares two values.
func (m Map[K, V]) Diff(o Map[K, V], same func(a, b V) bool, change func(k K, old, new *V)) {
	trieDiff(m.root, o.root, same, change)
}

func trieDiff[K comparable, V any](a, b *trieNode[K, V], same func(a, b V) bool, change func(k K, old, new *V)) {
	if a == b {
		return
	}
	if a != nil && b != nil && a.kids != nil && b.kids != nil {
		for i := range a.kids {
			trieDiff(a.kids[i], b.kids[i], same, change)
		}
		return
	}
	// A leaf, or a subtree present on one side only: compare entries.
	// Leaves hold at most trieLeaf entries (more only where hashes
	// collide), so a linear search among the old ones beats building a
	// map; a whole subtree on one side is compared by a map.
	var oldBuf, newBuf [2 * trieLeaf]*trieEntry[K, V]
	olds, news := trieEntries(a, oldBuf[:0]), trieEntries(b, newBuf[:0])
	if len(olds) > 64 {
		trieDiffMap(olds, news, same, change)
		return
	}
	var matched uint64 // bit i: olds[i] has a counterpart in news
	for _, n := range news {
		i := slices.IndexFunc(olds, func(o *trieEntry[K, V]) bool { return o.hash == n.hash && o.key == n.key })
		if i < 0 {
			v := n.val
			change(n.key, nil, &v)
			continue
		}
		matched |= 1 << i
		if !same(olds[i].val, n.val) {
			old, v := olds[i].val, n.val
			change(n.key, &old, &v)
		}
	}
	for i, o := range olds {
		if matched&(1<<i) == 0 {
			old := o.val
			change(o.key, &old, nil)
		}
	}
}

// trieDiffMap is trieDiff's comparison of entries for many old ones.
func trieDiffMap[K comparable, V any](olds, news []*trieEntry[K, V], same func(a, b V) bool, change func(k K, old, new *V)) {
	byKey := make(map[K]*trieEntry[K, V], len(olds))
	for _, o := range olds {
		byKey[o.key] = o
	}
	for _, n := range news {
		o, ok := byKey[n.key]
		v := n.val
		switch {
		case !ok:
			change(n.key, nil, &v)
		case !same(o.val, n.val):
			old := o.val
			change(n.key, &old, &v)
		}
		delete(byKey, n.key)
	}
	for _, o := range olds {
		if _, ok := byKey[o.key]; ok {
			old := o.val
			change(o.key, &old, nil)
		}
	}
}

// trieEntries appends the entries of the subtree n to dst. The entries
// are the trie's own: read only.
func trieEntries[K comparable, V any](n *trieNode[K, V], dst []*trieEntry[K, V]) []*trieEntry[K, V] {
	if n == nil {
		return dst
	}
	if n.kids == nil {
		for i := range n.entries {
			dst = append(dst, &n.entries[i])
		}
		return dst
	}
	for _, c := range n.kids {
		dst = trieEntries(c, dst)
	}
	return dst
}

// ShareWith returns m with every subtree whose contents equal those of
// the same subtree of o replaced by o's, so two maps decoded apart (a
// snapshot's state and its history's base) share their memory where they
// agree. Two maps built by set from keys inserted in the same order have
// the same shape where their keys agree. m's own nodes are changed in
// place: only for a map being built that no one else holds yet.
func (m *Map[K, V]) ShareWith(o Map[K, V], same func(a, b V) bool) {
	m.root = trieShare(m.root, o.root, same)
}

func trieShare[K comparable, V any](a, b *trieNode[K, V], same func(a, b V) bool) *trieNode[K, V] {
	if a == nil || b == nil || a == b {
		return a
	}
	if a.kids != nil && b.kids != nil {
		all := true
		for i := range a.kids {
			a.kids[i] = trieShare(a.kids[i], b.kids[i], same)
			all = all && a.kids[i] == b.kids[i]
		}
		if all {
			return b
		}
		return a
	}
	if a.kids != nil || b.kids != nil || len(a.entries) != len(b.entries) {
		return a
	}
	for i, e := range a.entries {
		if f := b.entries[i]; e.hash != f.hash || e.key != f.key || !same(e.val, f.val) {
			return a
		}
	}
	return b
}
