"""Out-of-band safety filters around each tool call (docs/safety.md).

A server's `filters` become one `SafetyChain` (`build.py`): call filters screen a
`tools/call`'s arguments before it goes upstream and its result before the client sees it
(`secrets.py`, configured patterns, the external guard in `guard.py`); definition filters
judge each tool as it is learned (`poisoning.py`) and may withhold it through the server's
decision point (`withheld.py`). The request path reaches them in `pipeline/screen.py`.

Nothing is imported here: the config model reads the built-in rule tables from this
package, and the config package is imported by everything.
"""
