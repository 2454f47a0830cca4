package format

import "fmt"

// Limits bound what a reader accepts (spec section 6). A file over a limit is
// rejected with ErrLimit; raising a limit never changes what a valid file
// means. The zero value of a field means its default.
type Limits struct {
	// MaxHeaderSize bounds the FlatBuffers header in bytes. Default 64 MiB.
	MaxHeaderSize int64
	// MaxTensors bounds the number of tensors. Default 1,048,576.
	MaxTensors int
	// MaxRank bounds the number of dimensions of a tensor. Default 16, at most 64.
	MaxRank int
	// MaxNameLength bounds a tensor name in bytes. Default 1024.
	MaxNameLength int
	// MaxMetadataSize bounds the total bytes of all metadata keys and values,
	// tensor attributes and provenance notes. Default 16 MiB.
	MaxMetadataSize int64
	// MaxDecompressedSize bounds the decoded size of one compressed tensor;
	// a larger one fails when it is read. Default 4 GiB.
	MaxDecompressedSize int64
	// MaxSignatures bounds the entries of a signature block. Default 16.
	MaxSignatures int
}

// Defaults of Limits, and the ceilings that no setting may pass.
const (
	DefaultMaxHeaderSize       = 64 << 20
	DefaultMaxTensors          = 1 << 20
	DefaultMaxRank             = 16
	DefaultMaxNameLength       = 1024
	DefaultMaxMetadataSize     = 16 << 20
	DefaultMaxDecompressedSize = 4 << 30
	DefaultMaxSignatures       = 16

	// CeilHeaderSize is the largest header any reader accepts: FlatBuffers
	// offsets are 32-bit.
	CeilHeaderSize = 1<<31 - 1
	// CeilRank is the largest rank any reader accepts.
	CeilRank = 64
	// CeilSignatures is the largest signature count any reader accepts.
	CeilSignatures = 1024
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxHeaderSize:       DefaultMaxHeaderSize,
		MaxTensors:          DefaultMaxTensors,
		MaxRank:             DefaultMaxRank,
		MaxNameLength:       DefaultMaxNameLength,
		MaxMetadataSize:     DefaultMaxMetadataSize,
		MaxDecompressedSize: DefaultMaxDecompressedSize,
		MaxSignatures:       DefaultMaxSignatures,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxHeaderSize == 0 {
		l.MaxHeaderSize = d.MaxHeaderSize
	}
	if l.MaxTensors == 0 {
		l.MaxTensors = d.MaxTensors
	}
	if l.MaxRank == 0 {
		l.MaxRank = d.MaxRank
	}
	if l.MaxNameLength == 0 {
		l.MaxNameLength = d.MaxNameLength
	}
	if l.MaxMetadataSize == 0 {
		l.MaxMetadataSize = d.MaxMetadataSize
	}
	if l.MaxDecompressedSize == 0 {
		l.MaxDecompressedSize = d.MaxDecompressedSize
	}
	if l.MaxSignatures == 0 {
		l.MaxSignatures = d.MaxSignatures
	}
	return l
}

// Validate reports a limit that is negative or above its ceiling.
func (l Limits) Validate() error {
	switch {
	case l.MaxHeaderSize < 0 || l.MaxHeaderSize > CeilHeaderSize:
		return fmt.Errorf("swt: MaxHeaderSize %d out of range [1, %d]", l.MaxHeaderSize, CeilHeaderSize)
	case l.MaxTensors < 0:
		return fmt.Errorf("swt: MaxTensors %d is negative", l.MaxTensors)
	case l.MaxRank < 0 || l.MaxRank > CeilRank:
		return fmt.Errorf("swt: MaxRank %d out of range [1, %d]", l.MaxRank, CeilRank)
	case l.MaxNameLength < 0:
		return fmt.Errorf("swt: MaxNameLength %d is negative", l.MaxNameLength)
	case l.MaxMetadataSize < 0:
		return fmt.Errorf("swt: MaxMetadataSize %d is negative", l.MaxMetadataSize)
	case l.MaxDecompressedSize < 0:
		return fmt.Errorf("swt: MaxDecompressedSize %d is negative", l.MaxDecompressedSize)
	case l.MaxSignatures < 0 || l.MaxSignatures > CeilSignatures:
		return fmt.Errorf("swt: MaxSignatures %d out of range [1, %d]", l.MaxSignatures, CeilSignatures)
	}
	return nil
}
