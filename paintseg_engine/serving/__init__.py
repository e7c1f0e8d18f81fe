"""``paintseg serve``'s parts that know nothing of LitServe: its settings, the wire format
(requests in, answers out), the LRU of image set-ups and the HTTP gate in front of the queue.
The LitAPI that joins them is commands/serve.py."""
