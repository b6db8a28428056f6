package h2pool

// The exported trampoline that libh2pool calls for logging. The cgo
// preamble of this file holds declarations only: cgo copies it into the
// generated _cgo_export.h, so a definition here would be duplicated.
// Requests call back into no Go code: their events come through the
// pool's completion queue (queue.go).

// #include <stdint.h>
// #include <h2pool.h>
import "C"

import "runtime/cgo"

// h2poolGoLog is the log callback of pools created with Config.Logger. It
// runs on the loop thread or on the thread creating or destroying the pool.
//
//export h2poolGoLog
func h2poolGoLog(level C.int, msg *C.char, handle C.uintptr_t) {
	logger, ok := cgo.Handle(handle).Value().(func(LogLevel, string))
	if !ok || logger == nil {
		return
	}
	text := C.GoString(msg)
	defer func() {
		// A panic must not unwind into C; a logger's panic is dropped.
		_ = recover()
	}()
	logger(LogLevel(level), text)
}
