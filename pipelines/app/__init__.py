"""The application layer: the command line, its render commands, the model cache and the
steps the nodes and the command line share. The model families never import it."""
