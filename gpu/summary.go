package gpu

import "github.com/safeweights/safeweights/format"

// Summary is what a command line prints about a Load, as JSON.
type Summary struct {
	File         string  `json:"file"`
	Device       int     `json:"device"`
	DeviceName   string  `json:"device_name"`
	Path         Path    `json:"path"`
	Note         string  `json:"note,omitempty"`
	Resident     float64 `json:"resident"`
	Bytes        int64   `json:"bytes"`
	Windows      int     `json:"windows"`
	Verified     bool    `json:"verified"`
	SetupSeconds float64 `json:"setup_seconds"`
	Seconds      float64 `json:"seconds"` // the load, setup excluded
	GBps         float64 `json:"gbps"`
	Checked      bool    `json:"checked"` // set by the caller after Check
	// Seconds spent per kind of work (see Times), summed over goroutines.
	StagingSeconds    float64         `json:"staging_seconds"`
	RegisterSeconds   float64         `json:"register_seconds"`
	UnregisterSeconds float64         `json:"unregister_seconds"`
	ReadSeconds       float64         `json:"read_seconds"`
	HashSeconds       float64         `json:"hash_seconds"`
	CopyQueueSeconds  float64         `json:"copy_queue_seconds"`
	CopyWaitSeconds   float64         `json:"copy_wait_seconds"`
	DecompressSeconds float64         `json:"decompress_seconds"`
	Tensors           []TensorSummary `json:"tensors,omitempty"`
}

// TensorSummary locates one loaded tensor in the file and on the device.
type TensorSummary struct {
	Name         string             `json:"name"`
	DType        string             `json:"dtype"`
	Shape        []int64            `json:"shape"`
	Size         int64              `json:"size"`
	FileOffset   int64              `json:"file_offset"`
	StoredLength int64              `json:"stored_length"`
	Compression  format.Compression `json:"-"`
	Compressed   bool               `json:"compressed"`
	Ptr          DevicePtr          `json:"ptr"`
	// Slice is the loaded part of the tensor (LoadPlan), in NumPy's syntax.
	Slice string `json:"slice,omitempty"`
}

// Summary describes m for printing; file is the path to report.
func (m *Model) Summary(file string, withTensors bool) Summary {
	s := Summary{
		File: file, Device: m.Device, DeviceName: m.DeviceName,
		Path: m.Stats.Path, Note: m.Stats.Note, Resident: m.Stats.Resident,
		Bytes: m.Stats.Bytes, Windows: m.Stats.Windows, Verified: m.Stats.Verified,
		SetupSeconds: m.Stats.Setup.Seconds(), Seconds: m.Stats.Load.Seconds(), GBps: m.Stats.GBps(),
	}
	t := m.Stats.Times
	s.StagingSeconds, s.RegisterSeconds, s.UnregisterSeconds = t.Staging.Seconds(), t.Register.Seconds(), t.Unregister.Seconds()
	s.ReadSeconds, s.HashSeconds = t.Read.Seconds(), t.Hash.Seconds()
	s.CopyQueueSeconds, s.CopyWaitSeconds, s.DecompressSeconds = t.CopyQueue.Seconds(), t.CopyWait.Seconds(), t.Decompress.Seconds()
	if withTensors {
		for _, t := range m.Tensors {
			ts := TensorSummary{
				Name: t.Name, DType: t.DType.String(), Shape: t.Shape, Size: t.Size,
				FileOffset: t.FileOffset, StoredLength: t.StoredLength,
				Compression: t.Compression, Compressed: t.Compression != format.None, Ptr: t.Ptr,
			}
			if t.Slice != nil {
				ts.Slice = t.Slice.String()
			}
			s.Tensors = append(s.Tensors, ts)
		}
	}
	return s
}
