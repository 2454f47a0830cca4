package safetensors

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/safeweights/safeweights/convert"
)

// MetaShards is the metadata key under which a sharded conversion records
// its shards: a JSON array of {"file", "sha256"} in shard order. The
// provenance digest is that of the index file.
const MetaShards = "safetensors.shards"

// Index is a parsed Hugging Face shard index (model.safetensors.index.json).
type Index struct {
	// Metadata holds the index's "metadata" entries: strings as they are,
	// numbers, booleans and null as their JSON text. Nested values are
	// skipped and named in Skipped.
	Metadata map[string]string
	// WeightMap maps each tensor name to the file name of its shard.
	WeightMap map[string]string
	// Shards are the distinct shard file names, sorted.
	Shards []string
	// Skipped names the metadata entries and top-level keys not carried.
	Skipped []string
}

// ParseIndex parses and checks a shard index (S11): a JSON object with a
// "weight_map" object of tensor name to shard file name, and optionally a
// "metadata" object; other top-level keys are skipped. Shard names must be
// plain file names in the index's own directory: a name with a separator,
// a drive, "." or ".." is refused with ErrShardName.
func ParseIndex(data []byte, lim Limits) (*Index, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > lim.MaxHeaderSize {
		return nil, errorf(ErrHeaderTooLarge, 0, "", "index of "+strconv.Itoa(len(data))+" bytes")
	}
	if !utf8.Valid(data) {
		return nil, errorf(ErrHeaderJSON, 0, "", "index is not utf-8")
	}
	s := &scanner{b: data}
	if s.peek() != '{' {
		return nil, errorf(ErrIndex, s.off(), "", "index is not a json object")
	}
	idx := &Index{Metadata: map[string]string{}}
	empty, err := s.open('{', '}')
	if err != nil {
		return nil, err
	}
	seenTop := map[string]bool{}
	for !empty {
		keyOff := s.off()
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		if seenTop[key] {
			return nil, errorf(ErrDuplicateName, keyOff, "", "index key "+strconv.Quote(key)+" appears twice")
		}
		seenTop[key] = true
		switch key {
		case "weight_map":
			if idx.WeightMap, err = parseWeightMap(s, lim); err != nil {
				return nil, err
			}
		case "metadata":
			if err := parseIndexMetadata(s, idx); err != nil {
				return nil, err
			}
		default:
			if err := s.skip(maxSkipDepth); err != nil {
				return nil, err
			}
			idx.Skipped = append(idx.Skipped, key)
		}
		more, err := s.next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	if idx.WeightMap == nil {
		return nil, errorf(ErrIndex, -1, "", "index has no weight_map")
	}
	shards := map[string]bool{}
	for _, f := range idx.WeightMap {
		if !shards[f] {
			if len(shards) >= lim.MaxShards {
				return nil, &Error{Offset: -1, Reason: "more than " + strconv.Itoa(lim.MaxShards) + " shards", Err: ErrOverLimit}
			}
			shards[f] = true
			idx.Shards = append(idx.Shards, f)
		}
	}
	slices.Sort(idx.Shards)
	return idx, nil
}

func parseWeightMap(s *scanner, lim Limits) (map[string]string, error) {
	if s.peek() != '{' {
		return nil, errorf(ErrIndex, s.off(), "", "weight_map is not an object")
	}
	empty, err := s.open('{', '}')
	if err != nil {
		return nil, err
	}
	wm := map[string]string{}
	for !empty {
		keyOff := s.off()
		name, err := s.str()
		if err != nil {
			return nil, err
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		if err := checkName(name, keyOff, lim); err != nil {
			return nil, err
		}
		if _, dup := wm[name]; dup {
			return nil, errorf(ErrDuplicateName, keyOff, name, "in weight_map")
		}
		if len(wm) >= lim.MaxTensors {
			return nil, &Error{Offset: keyOff, Reason: "more than " + strconv.Itoa(lim.MaxTensors) + " tensors", Err: ErrOverLimit}
		}
		if s.peek() != '"' {
			return nil, errorf(ErrIndex, s.off(), name, "shard name is not a string")
		}
		valOff := s.off()
		file, err := s.str()
		if err != nil {
			return nil, err
		}
		if !plainFileName(file) {
			return nil, errorf(ErrShardName, valOff, name, "shard "+strconv.Quote(file))
		}
		wm[name] = file
		more, err := s.next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	return wm, nil
}

func parseIndexMetadata(s *scanner, idx *Index) error {
	if s.peek() == 'n' {
		return s.literal("null")
	}
	if s.peek() != '{' {
		return errorf(ErrIndex, s.off(), "", "metadata is not an object")
	}
	empty, err := s.open('{', '}')
	if err != nil {
		return err
	}
	for !empty {
		keyOff := s.off()
		k, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if _, dup := idx.Metadata[k]; dup {
			return errorf(ErrDuplicateName, keyOff, "", "metadata key "+strconv.Quote(k)+" appears twice")
		}
		switch c := s.peek(); {
		case c == '"':
			if idx.Metadata[k], err = s.str(); err != nil {
				return err
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if idx.Metadata[k], err = s.number(); err != nil {
				return err
			}
		case c == 't' || c == 'f' || c == 'n':
			start := s.pos
			if err := s.skip(0); err != nil {
				return err
			}
			idx.Metadata[k] = string(s.b[start:s.pos])
		default:
			if err := s.skip(maxSkipDepth); err != nil {
				return err
			}
			idx.Skipped = append(idx.Skipped, "metadata."+k)
		}
		more, err := s.next('}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	return nil
}

// plainFileName reports whether name is a file name with no directory
// part on any common system: no separator, no drive, not "." or "..", no
// NUL or other control character.
func plainFileName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c == '/' || c == '\\' || c == ':' {
			return false
		}
	}
	return filepath.IsLocal(name) && filepath.Base(name) == name
}

// shardSet is a sharded checkpoint read into one model: the shards stay
// mapped until Close.
type shardSet struct {
	index   *convert.Source
	sources []*convert.Source
}

func (ss *shardSet) Close() error {
	var first error
	for _, s := range append(ss.sources, ss.index) {
		if s == nil {
			continue
		}
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// readSharded reads the index at indexPath and all its shards into one
// model, in shard order and data order within each shard.
func readSharded(indexPath string, lim Limits) (*convert.Model, *shardSet, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	ss := &shardSet{}
	if err := checkSize(indexPath, lim.MaxHeaderSize); err != nil {
		return nil, nil, err
	}
	if ss.index, err = convert.OpenSource(indexPath); err != nil {
		return nil, nil, err
	}
	idx, err := ParseIndex(ss.index.Data, lim)
	if err != nil {
		ss.Close()
		return nil, nil, err
	}
	dir := filepath.Dir(indexPath)
	m := &convert.Model{
		SourceFormat: SourceFormat,
		Metadata:     map[string]string{},
		Report:       convert.Report{SourceFormat: SourceFormat, Converter: Converter, Dropped: []convert.Dropped{}},
	}
	for _, k := range idx.Skipped {
		m.Report.Warnings = append(m.Report.Warnings, "index entry "+strconv.Quote(k)+" is not a string or scalar and was not carried")
	}
	found := map[string]string{} // tensor -> shard it was found in
	type shardRecord struct {
		File   string `json:"file"`
		SHA256 string `json:"sha256"`
	}
	var records []shardRecord
	for _, shard := range idx.Shards {
		src, err := convert.OpenSource(filepath.Join(dir, shard))
		if err != nil {
			ss.Close()
			return nil, nil, err
		}
		ss.sources = append(ss.sources, src)
		sm, err := read(src.Data, lim)
		if err != nil {
			ss.Close()
			return nil, nil, fmt.Errorf("safetensors: shard %s: %w", shard, err)
		}
		for k, v := range sm.Metadata {
			if old, ok := m.Metadata[k]; ok && old != v {
				m.Report.Warnings = append(m.Report.Warnings, "shard "+shard+" metadata "+strconv.Quote(k)+
					" differs from an earlier shard's; the earlier value is kept")
				continue
			}
			m.Metadata[k] = v
		}
		for _, t := range sm.Tensors {
			if prev, dup := found[t.Name]; dup {
				ss.Close()
				return nil, nil, &Error{Offset: -1, Tensor: t.Name, Err: ErrDuplicateName,
					Reason: "in shards " + prev + " and " + shard}
			}
			found[t.Name] = shard
			want, listed := idx.WeightMap[t.Name]
			switch {
			case !listed:
				m.Report.Dropped = append(m.Report.Dropped, convert.Dropped{Path: shard + ":" + t.Name,
					Kind: convert.DropOrphan, Detail: "tensor not listed in the index"})
				continue
			case want != shard:
				ss.Close()
				return nil, nil, &Error{Offset: -1, Tensor: t.Name, Err: ErrIndex,
					Reason: "found in shard " + shard + ", the index puts it in " + want}
			}
			if len(m.Tensors) >= lim.MaxTensors {
				ss.Close()
				return nil, nil, &Error{Offset: -1, Reason: "more than " + strconv.Itoa(lim.MaxTensors) + " tensors", Err: ErrOverLimit}
			}
			m.Tensors = append(m.Tensors, t)
		}
	}
	var missing []string
	for name := range idx.WeightMap {
		if _, ok := found[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		ss.Close()
		return nil, nil, &Error{Offset: -1, Tensor: missing[0], Err: ErrIndex,
			Reason: "not in its shard " + idx.WeightMap[missing[0]] + " (" + strconv.Itoa(len(missing)) + " missing)"}
	}
	for k, v := range idx.Metadata {
		if old, ok := m.Metadata[k]; ok && old != v {
			m.Report.Warnings = append(m.Report.Warnings, "index metadata "+strconv.Quote(k)+" differs from the shards'; the shards' value is kept")
			continue
		}
		m.Metadata[k] = v
	}
	// The shards were hashed in the background while they were read.
	for i, src := range ss.sources {
		sum := src.SHA256()
		records = append(records, shardRecord{idx.Shards[i], hex.EncodeToString(sum[:])})
	}
	js, _ := json.Marshal(records)
	m.Metadata[MetaShards] = string(js)
	return m, ss, nil
}

// checkSize refuses a file larger than max before it is read.
func checkSize(path string, max int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if st.Size() > max {
		return errorf(ErrHeaderTooLarge, 0, "", "index of "+strconv.FormatInt(st.Size(), 10)+" bytes")
	}
	return nil
}

// ConvertSharded converts a sharded Hugging Face checkpoint, given by its
// index file (model.safetensors.index.json), into the one safeweights file
// dst. Only the shards the index names are opened, from the index's
// directory; every tensor the index lists must be in the shard it names,
// no tensor may be in two shards, and a tensor a shard holds that the index
// does not list is dropped and reported (kind orphan). opts are as for
// Convert; nothing is left at dst on failure or cancellation.
func ConvertSharded(ctx context.Context, indexPath, dst string, opts ...convert.Option) (*convert.Report, error) {
	lim, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	m, ss, err := readSharded(indexPath, lim)
	if err != nil {
		return nil, err
	}
	defer ss.Close()
	if err := convert.WriteFile(ctx, dst, m, ss.index, opts...); err != nil {
		return nil, err
	}
	return convert.CompleteReport(m, indexPath, dst, ss.index), nil
}

// ConvertShards converts a sharded checkpoint into matching shards: one
// safeweights file per safetensors shard, in dstDir, named after the shard
// with its extension replaced by ".swt", and an index dstDir/model.swt.index.json
// of the same form as the source index ({"metadata": ..., "weight_map":
// {tensor: file}}). The same checks as ConvertSharded apply. It returns one
// report per shard.
//
// opts are as for Convert; progress counts the bytes of all shards. A
// failure or cancellation may leave shards already written in dstDir, but
// never a partial file and never the index.
func ConvertShards(ctx context.Context, indexPath, dstDir string, opts ...convert.Option) ([]*convert.Report, error) {
	st, err := convert.NewSettings(opts...)
	if err != nil {
		return nil, err
	}
	lim, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	m, ss, err := readSharded(indexPath, lim)
	if err != nil {
		return nil, err
	}
	defer ss.Close()
	var before, total int64 // bytes of the shards written, of all shards
	for _, t := range m.Tensors {
		total += int64(len(t.Data))
	}
	idxData := ss.index.Data
	idx, _ := ParseIndex(idxData, lim) // already checked by readSharded
	outs := map[string]string{}
	for _, shard := range idx.Shards {
		if prev, dup := outs[strings.ToLower(swtName(shard))]; dup {
			return nil, &Error{Offset: -1, Err: ErrShardName,
				Reason: "shards " + prev + " and " + shard + " would both become " + swtName(shard)}
		}
		outs[strings.ToLower(swtName(shard))] = shard
	}
	byShard := map[string][]convert.Tensor{}
	weightMap := map[string]string{}
	for _, t := range m.Tensors {
		out := swtName(idx.WeightMap[t.Name])
		byShard[out] = append(byShard[out], t)
		weightMap[t.Name] = out
	}
	var reports []*convert.Report
	for i, shard := range idx.Shards {
		out := swtName(shard)
		sm := &convert.Model{
			SourceFormat: SourceFormat,
			Tensors:      byShard[out],
			Metadata:     m.Metadata,
			Report:       convert.Report{SourceFormat: SourceFormat, Converter: Converter, Dropped: []convert.Dropped{}},
		}
		for _, d := range m.Report.Dropped {
			if strings.HasPrefix(d.Path, shard+":") {
				sm.Report.Dropped = append(sm.Report.Dropped, d)
			}
		}
		dst := filepath.Join(dstDir, out)
		shardOpts := opts
		if st.Progress != nil {
			base := before
			shardOpts = append(slices.Clip(opts), convert.WithProgress(func(done, _ int64) { st.Progress(base+done, total) }))
		}
		if err := convert.WriteFile(ctx, dst, sm, ss.sources[i], shardOpts...); err != nil {
			return nil, err
		}
		for _, t := range sm.Tensors {
			before += int64(len(t.Data))
		}
		reports = append(reports, convert.CompleteReport(sm, filepath.Join(filepath.Dir(indexPath), shard), dst, ss.sources[i]))
	}
	js, err := json.MarshalIndent(struct {
		Metadata  map[string]string `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{idx.Metadata, weightMap}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if err := writeAtomic(filepath.Join(dstDir, "model.swt.index.json"), func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	}); err != nil {
		return nil, err
	}
	return reports, nil
}

// swtName replaces a shard's .safetensors extension with .swt.
func swtName(shard string) string {
	return strings.TrimSuffix(shard, filepath.Ext(shard)) + ".swt"
}
