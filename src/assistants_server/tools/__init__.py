"""The Tool seam (base.py), the registry of the tools offered (registry.py) and the tools'
wire definitions as assistants and runs accept them (definitions.py). The tools themselves
are in toolbox/."""
