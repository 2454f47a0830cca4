package tp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
)

// A Rule splits the tensors whose names match Pattern (path.Match syntax:
// '*' matches any run of characters but '/', '?' one character, [a-z] a
// class) along Dim: a dimension from 0, Replicated, or below Replicated a
// dimension from the end (-2 the last), as in ByName.
type Rule struct {
	Pattern string
	Dim     int
}

// ByPatterns uses the first rule whose pattern matches a tensor's name, and
// def for tensors no rule matches. A malformed pattern is an error, found
// here rather than when a name first reaches it.
func ByPatterns(rules []Rule, def Layout) (Layout, error) {
	for _, r := range rules {
		if _, err := path.Match(r.Pattern, ""); err != nil {
			return nil, planError(fmt.Sprintf("pattern %q: %v", r.Pattern, err))
		}
	}
	rules = append([]Rule(nil), rules...)
	return func(name string, shape []int64) int {
		for _, r := range rules {
			if ok, _ := path.Match(r.Pattern, name); ok {
				if r.Dim < Replicated {
					return len(shape) + r.Dim + 1
				}
				return r.Dim
			}
		}
		return def(name, shape)
	}, nil
}

// maxLayoutFile bounds a layout file: thousands of rules fit easily.
const maxLayoutFile = 1 << 20

// ParseLayout reads a layout file, JSON of the form
//
//	{"default": "rows", "rules": [
//	  {"pattern": "*.o_proj.weight", "split": "last"},
//	  {"pattern": "*norm*", "split": "replicated"},
//	  {"pattern": "lm_head.weight", "split": 0}]}
//
// where default is "rows" (the default), "columns" or "replicated", and a
// rule's split is a dimension from 0, "first", "last" or "replicated". The
// first matching rule wins. Unknown fields are refused, and so is a file
// over 1 MiB.
func ParseLayout(data []byte) (Layout, error) {
	if len(data) > maxLayoutFile {
		return nil, planError(fmt.Sprintf("layout file of %d bytes, over the limit of %d", len(data), maxLayoutFile))
	}
	var doc struct {
		Default string `json:"default"`
		Rules   []struct {
			Pattern string          `json:"pattern"`
			Split   json.RawMessage `json:"split"`
		} `json:"rules"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, planError("layout file: " + err.Error())
	}
	if dec.More() {
		return nil, planError("layout file: data after the JSON object")
	}
	var def Layout
	switch doc.Default {
	case "", "rows":
		def = Rows
	case "columns":
		def = Columns
	case "replicated":
		def = func(string, []int64) int { return Replicated }
	default:
		return nil, planError(fmt.Sprintf("layout file: default %q: want rows, columns or replicated", doc.Default))
	}
	rules := make([]Rule, 0, len(doc.Rules))
	for i, r := range doc.Rules {
		if r.Pattern == "" {
			return nil, planError(fmt.Sprintf("layout file: rule %d has no pattern", i))
		}
		dim, err := parseSplit(r.Split)
		if err != nil {
			return nil, planError(fmt.Sprintf("layout file: rule %d (%q): %v", i, r.Pattern, err))
		}
		rules = append(rules, Rule{Pattern: r.Pattern, Dim: dim})
	}
	return ByPatterns(rules, def)
}

// parseSplit reads a rule's split: a dimension from 0 (at most 63, the most
// a shape can have), "first", "last" or "replicated".
func parseSplit(raw json.RawMessage) (int, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch s {
		case "first":
			return 0, nil
		case "last":
			return Replicated - 1, nil
		case "replicated":
			return Replicated, nil
		}
		return 0, fmt.Errorf("split %q: want a dimension, first, last or replicated", s)
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("split %s: want a dimension from 0 to 63, first, last or replicated", raw)
	}
	return n, nil
}
