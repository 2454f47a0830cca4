package safetensors

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
)

// shardedCheckpoint writes the tensors of allDTypeTensors split over three
// shards and an index, as transformers' save_pretrained lays them out.
func shardedCheckpoint(t *testing.T, dir string) (index string, all []convert.Tensor) {
	t.Helper()
	all = allDTypeTensors(3)
	shards := [][]convert.Tensor{all[:5], all[5:11], all[11:]}
	wm := map[string]string{}
	for i, ts := range shards {
		name := "model-0000" + string(rune('1'+i)) + "-of-00003.safetensors"
		writeFile(t, filepath.Join(dir, name), ts, map[string]string{"format": "pt"})
		for _, tn := range ts {
			wm[tn.Name] = name
		}
	}
	index = writeIndex(t, dir, map[string]any{
		"metadata":   map[string]any{"total_size": 12345, "note": "x", "nested": map[string]any{"a": 1}},
		"weight_map": wm,
	})
	return index, all
}

func writeIndex(t *testing.T, dir string, v any) string {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "model.safetensors.index.json")
	if err := os.WriteFile(p, js, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func swtTensors(t *testing.T, path string) ([]convert.Tensor, map[string]string) {
	t.Helper()
	f, err := decode.Open(path, decode.WithVerify(decode.VerifyEager))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var ts []convert.Tensor
	for tn := range f.All() {
		b, err := tn.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, convert.Tensor{Name: tn.Name, DType: tn.DType, Shape: tn.Shape, Data: b})
	}
	return ts, f.Metadata()
}

func TestConvertSharded(t *testing.T) {
	dir := t.TempDir()
	index, all := shardedCheckpoint(t, dir)
	// A tensor in a shard that the index does not list is dropped and reported.
	extra := allDTypeTensors(3)[:5]
	extra = append(extra, convert.Tensor{Name: "stray", DType: 14, Shape: []int64{1}, Data: []byte{1}})
	writeFile(t, filepath.Join(dir, "model-00001-of-00003.safetensors"), extra, map[string]string{"format": "pt"})

	dst := filepath.Join(t.TempDir(), "model.swt")
	rep, err := ConvertSharded(context.Background(), index, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dropped) != 1 || rep.Dropped[0].Kind != convert.DropOrphan || len(rep.Warnings) != 1 {
		t.Errorf("dropped %+v, warnings %q", rep.Dropped, rep.Warnings)
	}
	got, meta := swtTensors(t, dst)
	compareTensors(t, all, got)
	if meta["format"] != "pt" || meta["total_size"] != "12345" || meta["note"] != "x" || meta[MetaShards] == "" {
		t.Errorf("metadata %v", meta)
	}

	outDir := t.TempDir()
	reps, err := ConvertShards(context.Background(), index, outDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 {
		t.Fatalf("%d reports", len(reps))
	}
	js, err := os.ReadFile(filepath.Join(outDir, "model.swt.index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(js, &idx); err != nil {
		t.Fatal(err)
	}
	var merged []convert.Tensor
	for _, name := range []string{"model-00001-of-00003.swt", "model-00002-of-00003.swt", "model-00003-of-00003.swt"} {
		ts, _ := swtTensors(t, filepath.Join(outDir, name))
		for _, tn := range ts {
			if idx.WeightMap[tn.Name] != name {
				t.Errorf("index puts %q in %q, found in %q", tn.Name, idx.WeightMap[tn.Name], name)
			}
		}
		merged = append(merged, ts...)
	}
	compareTensors(t, all, merged)
}

func TestConvertShardedHostile(t *testing.T) {
	a := []convert.Tensor{{Name: "a", DType: 14, Shape: []int64{1}, Data: []byte{1}}}
	ab := append(a, convert.Tensor{Name: "b", DType: 14, Shape: []int64{1}, Data: []byte{2}})
	cases := []struct {
		name   string
		shards map[string][]convert.Tensor
		index  string
		want   error
	}{
		{"shard-parent-dir", nil, `{"weight_map":{"a":"../s1.safetensors"}}`, ErrShardName},
		{"shard-absolute", nil, `{"weight_map":{"a":"/etc/passwd"}}`, ErrShardName},
		{"shard-subdir", nil, `{"weight_map":{"a":"sub/s1.safetensors"}}`, ErrShardName},
		{"shard-backslash", nil, `{"weight_map":{"a":"..\\s1.safetensors"}}`, ErrShardName},
		{"shard-drive", nil, `{"weight_map":{"a":"C:s1.safetensors"}}`, ErrShardName},
		{"shard-dotdot", nil, `{"weight_map":{"a":".."}}`, ErrShardName},
		{"shard-empty", nil, `{"weight_map":{"a":""}}`, ErrShardName},
		{"no-weight-map", nil, `{"metadata":{}}`, ErrIndex},
		{"weight-map-not-object", nil, `{"weight_map":[]}`, ErrIndex},
		{"index-not-object", nil, `[]`, ErrIndex},
		{"index-not-json", nil, `{"weight_map":{"a"`, ErrHeaderJSON},
		{"duplicate-weight-map-entry", map[string][]convert.Tensor{"s1": a}, `{"weight_map":{"a":"s1","a":"s1"}}`, ErrDuplicateName},
		{"duplicate-weight-map", map[string][]convert.Tensor{"s1": a}, `{"weight_map":{"a":"s1"},"weight_map":{"a":"s1"}}`, ErrDuplicateName},
		{"name-with-nul", map[string][]convert.Tensor{"s1": a}, `{"weight_map":{"a\u0000":"s1"}}`, ErrName},
		{"tensor-missing-from-shard", map[string][]convert.Tensor{"s1": a}, `{"weight_map":{"a":"s1","b":"s1"}}`, ErrIndex},
		{"tensor-in-wrong-shard", map[string][]convert.Tensor{"s1": a, "s2": {{Name: "b", DType: 14, Shape: []int64{0}}}}, `{"weight_map":{"a":"s2","b":"s1"}}`, ErrIndex},
		{"tensor-in-two-shards", map[string][]convert.Tensor{"s1": a, "s2": ab}, `{"weight_map":{"a":"s1","b":"s2"}}`, ErrDuplicateName},
		{"bad-shard", map[string][]convert.Tensor{}, `{"weight_map":{"a":"bad"}}`, ErrHeaderStart},
		{"deep-metadata", nil, `{"metadata":{"x":` + deep(100) + `},"weight_map":{}}`, ErrHeaderSchema},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, ts := range c.shards {
				writeFile(t, filepath.Join(dir, name), ts, nil)
			}
			if err := os.WriteFile(filepath.Join(dir, "bad"), rawFile(` {}`, nil), 0o644); err != nil {
				t.Fatal(err)
			}
			index := filepath.Join(dir, "model.safetensors.index.json")
			if err := os.WriteFile(index, []byte(c.index), 0o644); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "out.swt")
			_, err := ConvertSharded(context.Background(), index, dst)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatal("output left behind")
			}
		})
	}
}

func deep(n int) string {
	s := ""
	for range n {
		s += "["
	}
	for range n {
		s += "]"
	}
	return s
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":1,"x":null,"y":[1,{"z":true}]},"weight_map":{"a":"s1","b":"s2"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../x"}}`))
	f.Add([]byte(`{"other":[[[[]]]],"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := ParseIndex(data, Limits{})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T: %v", err, err)
			}
			return
		}
		for _, s := range idx.Shards {
			if !plainFileName(s) || filepath.Base(s) != s {
				t.Fatalf("shard %q accepted", s)
			}
		}
	})
}
