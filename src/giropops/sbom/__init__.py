"""What is inside an image: a squashed filesystem view, catalogers per ecosystem, SBOM formats."""
