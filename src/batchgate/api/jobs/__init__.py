"""The jobs dialect: plain prompts submitted as jobs, each job read on its own."""
