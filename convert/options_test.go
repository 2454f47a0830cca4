package convert

import (
	"errors"
	"testing"
)

// Keys of different packages never see each other's values, even of the
// same type and name; a key's check runs when the options are applied.
func TestKeys(t *testing.T) {
	a, b := NewKey[int]("limits"), NewKey[int]("limits")
	s, err := NewSettings(a.Option(1, nil), WithStrict(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := a.Get(s); !ok || v != 1 {
		t.Fatalf("a = %d, %v", v, ok)
	}
	if _, ok := b.Get(s); ok {
		t.Fatal("b sees a's value")
	}
	if !s.Strict || s.IncludeOptimizer {
		t.Fatalf("settings %+v", s.Options)
	}
	bad := errors.New("bad")
	if _, err := NewSettings(a.Option(-1, func(v int) error { return bad })); !errors.Is(err, bad) {
		t.Fatalf("check error %v", err)
	}
	if _, err := NewSettings(Key[int]{}.Option(0, nil)); err == nil {
		t.Fatal("zero key accepted")
	}
}
