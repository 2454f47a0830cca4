// Package auto recognises a model file by its content and converts it with
// the matching reader: BSON.jl and JLD2 Flux checkpoints, safetensors files
// and safeweights files. A file's name never decides its format; only the
// output's extension chooses the writer (".safetensors" for safetensors,
// anything else for safeweights).
//
// Detection looks at a bounded prefix of the file and its size only; the
// chosen reader then checks the whole file as hostile input, following the
// principles of spec/CONVERSION.md section 1 and its format-specific
// documents (spec/convert-bson.md, spec/convert-jld2.md,
// spec/convert-safetensors.md). A file that matches no format is named
// where it can be (convert.Diagnose): the error is then both
// ErrUnknownFormat and convert.ErrJuliaSerialization or convert.ErrTextMode.
package auto
