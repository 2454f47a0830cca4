package bson

import (
	"slices"
	"testing"
)

// A cycle of backrefs is valid (spec/convert-bson.md R2): each entry is
// converted once, and the back-edge is a "ref" node naming the path where
// the walk entered the entry.
func TestBackrefCycle(t *testing.T) {
	// An agent whose trace is an IdDict keyed by the agent itself, as in
	// reinforcement learning code: entry 1 is the agent, entry 2 its
	// weights.
	tIdDict := dt(path("Base", "IdDict"))
	agent := strct(dt(path("RL", "Agent")), br(2), strct(tIdDict, A{br(1)}, A{f32arr(9, 3)}))
	data := encode(D{
		{"learner", br(1)},
		{"again", br(1)},
		{"_backrefs", A{agent, f32arr(1, 2, 2)}},
	})
	m := mustRead(t, data)
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
	}
	if want := []string{"learner.field1", "learner.field2.entry1"}; !slices.Equal(names, want) {
		t.Fatalf("tensors %q, want %q", names, want)
	}
	if want := []string{"again.field1"}; !slices.Equal(m.Tensors[0].Aliases, want) {
		t.Errorf("aliases %q, want %q", m.Tensors[0].Aliases, want)
	}
	learner := m.Structure.Items[0].Items[1]
	key := learner.Fields[1].Node.Items[0].Items[0]
	if key.Kind != "ref" || key.Ref != "learner" {
		t.Errorf("back-edge %+v, want a ref to learner", key)
	}
	again := m.Structure.Items[1].Items[1]
	if again.Kind != "struct" || again.Type != "RL.Agent" || again.Ref != "learner" || again.Fields != nil {
		t.Errorf("shared entry reached again: %+v", again)
	}
	if len(m.Report.Dropped) != 0 {
		t.Errorf("dropped %+v", m.Report.Dropped)
	}
}

// A two-entry cycle of tuples holding no arrays converts, each entry once.
func TestBackrefCycleTuples(t *testing.T) {
	data := encode(D{{"x", br(1)}, {"_backrefs", A{tup(br(2), f32arr(0, 1)), tup(br(1))}}})
	m := mustRead(t, data)
	if len(m.Tensors) != 1 || m.Tensors[0].Name != "x.2" {
		t.Fatalf("tensors %+v", m.Tensors)
	}
	inner := m.Structure.Items[0].Items[1].Items[0]
	if back := inner.Items[0]; back.Kind != "ref" || back.Ref != "x" {
		t.Errorf("back-edge %+v", back)
	}
	// The work stays linear: a long cycle under the value limit.
	if _, err := Read(data, WithLimits(Limits{MaxValues: 3})); err == nil {
		t.Error("value limit not applied through a cycle")
	}
}
