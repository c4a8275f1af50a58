"""A trained Keras model, as a user has one: keras.io's "Simple MNIST convnet", trained for
one epoch on 6,000 images and saved as convnet.keras (the README's "Your own model").

The images are the MNIST files the harness reads ($HARNESS_DATA_DIR or its cache folder), so
the script runs offline; `keras.datasets.mnist.load_data()` gives the same arrays.
"""

import keras
from keras import layers

from harness.data import load_raw

mnist = load_raw("mnist")
x_train = mnist.x_train[:6000, :, :, None].astype("float32") / 255
y_train = keras.utils.to_categorical(mnist.y_train[:6000], 10)

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Flatten(),
    layers.Dropout(0.5),
    layers.Dense(10, activation="softmax"),
])
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=128, epochs=1, validation_split=0.1, verbose=2)
model.save("convnet.keras")
print("saved convnet.keras")
