"""`ModelGraph`: writes the model's forward pass as a graph to TensorBoard's Graphs dashboard (Keras 3.15's
`TensorBoard(write_graph=True)` does not write one for the TensorFlow trainer)."""

import os

import keras
import tensorflow as tf


class ModelGraph(keras.callbacks.Callback):
    """At the start of training, traces `model(inputs)` for the model's input specs and writes the graph to
    `<log_dir>/train`, where `keras.callbacks.TensorBoard(log_dir)` writes its scalars.

    Args:
        log_dir: str. The TensorBoard log directory.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir

    def on_train_begin(self, logs=None):
        specs = {m.name: tf.TensorSpec((None,) + tuple(m.shape), m.dtype) for m in self.model.modalities}
        graph = tf.function(lambda inputs: self.model(inputs, training=False)).get_concrete_function(specs).graph
        with tf.summary.create_file_writer(os.path.join(self.log_dir, "train")).as_default():
            tf.summary.graph(graph)
