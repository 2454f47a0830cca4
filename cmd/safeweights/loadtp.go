package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/gpu"
	"github.com/safeweights/safeweights/tp"
)

// loadFlags are the load command's settings that loadSlices shares.
type loadFlags struct {
	device                         int
	path                           gpu.Path
	verify, check, dryRun, jsonOut bool
	repeat                         int
	sweep                          []loadConf
}

// parseTPFlags checks the tensor-parallel flags of load and returns the
// layout, or nil when no tensor-parallel load was asked for.
func parseTPFlags(rank, world int, layout string) (tp.Layout, error) {
	var l tp.Layout
	switch layout {
	case "rows":
		l = tp.Rows
	case "columns":
		l = tp.Columns
	default:
		if !strings.HasSuffix(layout, ".json") {
			return nil, usageErrorf("load: unknown --tp-layout %q", layout).withHint("use rows, columns or a layout file FILE.json (docs/SLICES.md)")
		}
		data, err := readSmallFile(layout, 1<<20)
		if errors.Is(err, errTooLarge) {
			return nil, usageErrorf("load: --tp-layout %s is over 1 MiB", clean(layout))
		}
		if err != nil {
			return nil, err
		}
		if l, err = tp.ParseLayout(data); err != nil {
			return nil, usageErrorf("load: --tp-layout %s: %v", layout, err)
		}
	}
	if world == 0 && rank == 0 {
		return nil, nil
	}
	if world < 1 || world > 1<<16 {
		return nil, usageErrorf("load: --tp-world %d: want a group size from 1 to 65536", world)
	}
	if rank < 0 || rank >= world {
		return nil, usageErrorf("load: --tp-rank %d outside a group of %d", rank, world).withHint(fmt.Sprintf("ranks are 0 to %d", world-1))
	}
	return l, nil
}

// loadSlices loads rank's share of a .swt file or a sharded model (all of
// it for a world of one) with gpu.LoadPlan.
func loadSlices(e *env, ref, trusted string, dopts []decode.Option, rank, world int, layout tp.Layout, lf loadFlags) error {
	if layout == nil {
		layout = tp.Rows
	}
	var src tp.Source
	what := ref
	if isShardIndex(ref) {
		m, err := openIndex(ref, trusted)
		if err != nil {
			return err
		}
		defer m.Close()
		src = m
	} else {
		f, err := openSWT(e, ref, false, dopts...)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	if world > 1 {
		what = fmt.Sprintf("rank %d of %d of %s", rank, world, ref)
	}
	plan, err := tp.NewPlan(src, rank, world, layout)
	if err != nil {
		return err
	}
	share, err := plan.Bytes(src)
	if err != nil {
		return err
	}
	if lf.dryRun {
		fmt.Fprintf(e.stdout, "would load %s: %d tensors, %s (dry run: no device used)\n", clean(what), len(plan.Parts), humanBytes(share))
		return nil
	}
	base := []gpu.Option{gpu.WithDevice(lf.device), gpu.WithPath(lf.path)}
	for ci, conf := range lf.sweep {
		opts := append(append([]gpu.Option{}, base...), conf.opts...)
		for run := range lf.repeat {
			b := e.newBar("load", 0)
			m, err := gpu.LoadPlan(context.Background(), src, plan, append(opts, gpu.WithProgress(b.set))...)
			b.finish()
			if err != nil {
				return err
			}
			last := run == lf.repeat-1 && ci == len(lf.sweep)-1
			if lf.check && last {
				if err := m.CheckSource(context.Background(), src); err != nil {
					m.Close()
					return err
				}
			}
			sum := m.Summary(ref, false)
			sum.Checked = lf.check && last
			if err := m.Close(); err != nil {
				return err
			}
			if lf.jsonOut {
				res := loadResult{Summary: sum, Config: conf.desc}
				if world > 1 {
					res.Rank, res.World = &rank, world
				}
				if err := writeJSONLine(e.stdout, res); err != nil {
					return err
				}
				continue
			}
			printLoad(e, what, len(plan.Parts), sum, conf.desc, len(lf.sweep) > 1)
		}
	}
	return nil
}

// printLoad prints one load's result for a person.
func printLoad(e *env, what string, tensors int, sum gpu.Summary, config string, sweep bool) {
	fmt.Fprintf(e.stdout, "loaded %s: %d tensors, %s to device %d (%s)\n", clean(what), tensors, humanBytes(sum.Bytes), sum.Device, clean(sum.DeviceName))
	if sweep {
		fmt.Fprintf(e.stdout, "config %s\n", config)
	}
	fmt.Fprintf(e.stdout, "path %s", sum.Path)
	if sum.Note != "" {
		fmt.Fprintf(e.stdout, " (%s)", clean(sum.Note))
	}
	fmt.Fprintf(e.stdout, "; setup %.3fs, load %.3fs, %.2f GB/s; digests checked: %v; copied back and compared: %v\n",
		sum.SetupSeconds, sum.Seconds, sum.GBps, sum.Verified, sum.Checked)
}
