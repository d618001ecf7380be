"""Custom Keras layers: ``keras.ops`` only, registered for ``.keras`` serialization."""
