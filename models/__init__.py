"""Model code: feature config, tf.Transform preprocessing, the Keras DNN and
gradient-boosted trees, training, tuning, signatures and the gate metrics."""
