#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc device TX: ZeroMQ IQ -> PlutoSDR
# Author: gsc
# Description: Modem TX IQ (PULL from zmq_endpoint) scaled by tx_scale into the PlutoSDR sink (iio.fmcomms2_sink_fc32).
# GNU Radio version: 3.10.5.1

from gnuradio import blocks
from gnuradio import gr
from gnuradio.filter import firdes
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation
from gnuradio import iio
from gnuradio import zeromq




class pluto_tx(gr.top_block):

    def __init__(self, uri="ip:192.168.2.1", samp_rate=2160000, center_freq=2450000000, buffer_size=32768, bandwidth=2160000, attenuation=20, tx_scale=0.25, zmq_endpoint="tcp://127.0.0.1:5710"):
        gr.top_block.__init__(self, "gsc device TX: ZeroMQ IQ -> PlutoSDR", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.uri = uri
        self.samp_rate = samp_rate
        self.center_freq = center_freq
        self.buffer_size = buffer_size
        self.bandwidth = bandwidth
        self.attenuation = attenuation
        self.tx_scale = tx_scale
        self.zmq_endpoint = zmq_endpoint

        ##################################################
        # Blocks
        ##################################################

        self.zmq_source = zeromq.pull_source(gr.sizeof_gr_complex, 1, zmq_endpoint, 100, True, (-1))
        self.tx_backoff = blocks.multiply_const_cc(tx_scale)
        self.pluto_sink = iio.fmcomms2_sink_fc32(uri if uri else iio.get_pluto_uri(), [True, True], buffer_size, False)
        self.pluto_sink.set_len_tag_key('')
        self.pluto_sink.set_bandwidth(bandwidth)
        self.pluto_sink.set_frequency(center_freq)
        self.pluto_sink.set_samplerate(samp_rate)
        self.pluto_sink.set_attenuation(0, attenuation)
        self.pluto_sink.set_filter_params('Auto', '', 0, 0)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.tx_backoff, 0), (self.pluto_sink, 0))
        self.connect((self.zmq_source, 0), (self.tx_backoff, 0))


    def get_uri(self):
        return self.uri

    def set_uri(self, uri):
        self.uri = uri

    def get_samp_rate(self):
        return self.samp_rate

    def set_samp_rate(self, samp_rate):
        self.samp_rate = samp_rate
        self.pluto_sink.set_samplerate(self.samp_rate)

    def get_center_freq(self):
        return self.center_freq

    def set_center_freq(self, center_freq):
        self.center_freq = center_freq
        self.pluto_sink.set_frequency(self.center_freq)

    def get_buffer_size(self):
        return self.buffer_size

    def set_buffer_size(self, buffer_size):
        self.buffer_size = buffer_size

    def get_bandwidth(self):
        return self.bandwidth

    def set_bandwidth(self, bandwidth):
        self.bandwidth = bandwidth
        self.pluto_sink.set_bandwidth(self.bandwidth)

    def get_attenuation(self):
        return self.attenuation

    def set_attenuation(self, attenuation):
        self.attenuation = attenuation
        self.pluto_sink.set_attenuation(0,self.attenuation)

    def get_tx_scale(self):
        return self.tx_scale

    def set_tx_scale(self, tx_scale):
        self.tx_scale = tx_scale
        self.tx_backoff.set_k(self.tx_scale)

    def get_zmq_endpoint(self):
        return self.zmq_endpoint

    def set_zmq_endpoint(self, zmq_endpoint):
        self.zmq_endpoint = zmq_endpoint



def argument_parser():
    description = 'Modem TX IQ (PULL from zmq_endpoint) scaled by tx_scale into the PlutoSDR sink (iio.fmcomms2_sink_fc32).'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--uri", dest="uri", type=str, default="ip:192.168.2.1",
        help="Set IIO context URI [default=%(default)r]")
    parser.add_argument(
        "--samp-rate", dest="samp_rate", type=intx, default=2160000,
        help="Set Sample rate (S/s) [default=%(default)r]")
    parser.add_argument(
        "--center-freq", dest="center_freq", type=intx, default=2450000000,
        help="Set Centre frequency (Hz) [default=%(default)r]")
    parser.add_argument(
        "--buffer-size", dest="buffer_size", type=intx, default=32768,
        help="Set Buffer size (samples) [default=%(default)r]")
    parser.add_argument(
        "--bandwidth", dest="bandwidth", type=intx, default=2160000,
        help="Set TX RF bandwidth (Hz) [default=%(default)r]")
    parser.add_argument(
        "--attenuation", dest="attenuation", type=eng_float, default=eng_notation.num_to_str(float(20)),
        help="Set TX attenuation (dB) [default=%(default)r]")
    parser.add_argument(
        "--tx-scale", dest="tx_scale", type=eng_float, default=eng_notation.num_to_str(float(0.25)),
        help="Set Amplitude scale (back-off) [default=%(default)r]")
    parser.add_argument(
        "--zmq-endpoint", dest="zmq_endpoint", type=str, default="tcp://127.0.0.1:5710",
        help="Set Modem TX IQ endpoint [default=%(default)r]")
    return parser


def main(top_block_cls=pluto_tx, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(uri=options.uri, samp_rate=options.samp_rate, center_freq=options.center_freq, buffer_size=options.buffer_size, bandwidth=options.bandwidth, attenuation=options.attenuation, tx_scale=options.tx_scale, zmq_endpoint=options.zmq_endpoint)

    def sig_handler(sig=None, frame=None):
        tb.stop()
        tb.wait()

        sys.exit(0)

    signal.signal(signal.SIGINT, sig_handler)
    signal.signal(signal.SIGTERM, sig_handler)

    tb.start()

    tb.wait()


if __name__ == '__main__':
    main()
