"""Small pipelines and judges shipped with mgm, trained by the repo's own recipes (see the README)."""
