"""The commands of `portwitness`, one module per command or command group, and the pieces they
share: `options` (the option decorators), `context` (what the options tell the decode), `load`
(the decode), `output` (formats and writing), `audit` (report and --fail-on) and `errors` (exit
codes). `portwitness.cli` gathers them into the click group."""
