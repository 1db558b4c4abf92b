"""Inference engine: the only package that imports `llama_cpp`.

Submodules import `llama_cpp` themselves, so importing this package stays cheap; `system` needs
no llama.cpp at all.
"""
