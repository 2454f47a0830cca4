package safetensors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/internal/convtest"
	"github.com/safeweights/safeweights/decode"
)

func TestConvertAPI(t *testing.T) {
	src := filepath.Join(t.TempDir(), "model.safetensors")
	writeFile(t, src, allDTypeTensors(1), nil)
	convtest.Check(t, Convert, src, Converter)
}

func TestConvertShardedAPI(t *testing.T) {
	index, _ := shardedCheckpoint(t, t.TempDir())
	convtest.Check(t, ConvertSharded, index, Converter)
}

// Progress of a conversion into shards counts all shards; a cancelled one
// writes no shard index and leaves no temporary behind.
func TestConvertShardsProgressAndCancel(t *testing.T) {
	index, all := shardedCheckpoint(t, t.TempDir())
	var want int64
	for _, tn := range all {
		want += int64(len(tn.Data))
	}
	var last [2]int64
	reps, err := ConvertShards(context.Background(), index, t.TempDir(), convert.WithProgress(func(done, total int64) {
		if done < last[0] || (last[1] != 0 && total != last[1]) {
			t.Errorf("progress %d/%d after %d/%d", done, total, last[0], last[1])
		}
		last = [2]int64{done, total}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) < 2 || last != [2]int64{want, want} {
		t.Fatalf("%d shards, progress ended at %v, want %d", len(reps), last, want)
	}

	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, err = ConvertShardsIndexed(ctx, index, out, "m", nil, "", convert.WithProgress(func(done, _ int64) {
		if done > 0 {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".swt" {
			t.Errorf("left in the output directory: %s", e.Name())
		}
	}
}

func TestExportProgressAndCancel(t *testing.T) {
	dir := t.TempDir()
	src, swt := filepath.Join(dir, "in.safetensors"), filepath.Join(dir, "mid.swt")
	writeFile(t, src, allDTypeTensors(2), nil)
	rep, err := Convert(context.Background(), src, swt)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, tr := range rep.Tensors {
		want += tr.Bytes
	}
	var last [2]int64
	out := filepath.Join(dir, "out.safetensors")
	if err := ExportFile(context.Background(), swt, out,
		convert.WithDecodeOptions(decode.WithoutMmap()),
		convert.WithProgress(func(done, total int64) { last = [2]int64{done, total} })); err != nil {
		t.Fatal(err)
	}
	if last != [2]int64{want, want} {
		t.Fatalf("progress ended at %v, want %d", last, want)
	}

	cdir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = ExportFile(ctx, swt, filepath.Join(cdir, "out.safetensors"), convert.WithProgress(func(done, _ int64) {
		if done > 0 {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(cdir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

// The version is that of the spec the converter implements, and the name
// is built the one way.
func TestVersion(t *testing.T) {
	if v := convtest.SpecVersion(t, "../../spec/convert-safetensors.md"); v != Version {
		t.Errorf("spec/convert-safetensors.md is version %s, the converter says %s", v, Version)
	}
	if Converter != convert.ConverterName("safetensors", Version) {
		t.Errorf("Converter %q", Converter)
	}
}
