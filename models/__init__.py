"""Model code: feature config, tf.Transform preprocessing, Keras model and training."""
