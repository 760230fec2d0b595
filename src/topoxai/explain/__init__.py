"""The explain stage's science and its work, in one package.

The methods: persistent homology and neural persistence (`topology`), Mapper graphs
(`mapper`), Topological Uncertainty (`topological_uncertainty`); the untrained controls
(`controls`), the seeded row samples (`sample`, `seeds`). The stage's work (`stage.explain`)
runs one report per part: `layers`, `weights`, `graph`, `attributions`, `uncertainty`, and
`report` writes them. Empty here, so that the stage can draw its rows and start its
controls (numpy only) before anything imports torch.
"""
