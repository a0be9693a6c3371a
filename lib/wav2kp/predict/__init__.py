"""``wav2kp predict``: a trained model applied to a speech file, with a vid2vid folder and a
preview; the reference face (``references``) and the replaceable output folder
(``staging``)."""
