package palisade.broken

violation contains {"msg": msg} if {
	input.kind == "Pod"
	msg := "unterminated
}
