"""`harness import`: a trained model file (Keras, ONNX) read into a spec and its weights."""
