"""Moving data between servers: `export` writes a bundle (docs/bundle.md), `import` reads one."""
