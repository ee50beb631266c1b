"""The thin CLI: one module per command group, each parsing flags into a call of a pipeline step.

`framework` holds what every command shares (help style, running a step, the one error path),
`options` the options several commands take, `argtypes` the checked numeric flag types.
"""
