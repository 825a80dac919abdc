// Package palisade holds the function app's definition, embedded in the
// palisade binary: host.json and every functions/*/function.json, as they
// are in this source tree. `palisade dev` runs from it in any directory; a
// folder on disk (--app, or a current directory holding host.json)
// overrides it.
package palisade

import (
	"embed"
	"io/fs"
)

//go:embed host.json functions/*/function.json
var files embed.FS

// App returns the function app's files: host.json at the root and
// functions/NAME/function.json for each function.
func App() fs.FS { return files }
