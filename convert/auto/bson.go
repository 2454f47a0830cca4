package auto

import (
	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
)

func readBSON(opts Options) func([]byte) (*convert.Model, error) {
	return func(b []byte) (*convert.Model, error) {
		return bson.Read(b, bson.Options{Options: opts.Options})
	}
}
