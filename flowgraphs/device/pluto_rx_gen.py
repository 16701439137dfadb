#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc device RX: PlutoSDR -> ZeroMQ IQ
# Author: gsc
# Description: PlutoSDR source (iio.fmcomms2_source_fc32) into a PUSH sink bound at zmq_endpoint. Gain mode and tracking loops are applied by hardware.device after construction (GRC enums cannot be variables); gr-iio 3.10.5 sets the RX RF bandwidth from the sample rate ('Auto' filter: the source has no bandwidth setter).
# GNU Radio version: 3.10.5.1

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




class pluto_rx(gr.top_block):

    def __init__(self, uri="ip:192.168.2.1", samp_rate=2160000, center_freq=2450000000, buffer_size=32768, gain=30, zmq_endpoint="tcp://127.0.0.1:5711"):
        gr.top_block.__init__(self, "gsc device RX: PlutoSDR -> ZeroMQ IQ", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.uri = uri
        self.samp_rate = samp_rate
        self.center_freq = center_freq
        self.buffer_size = buffer_size
        self.gain = gain
        self.zmq_endpoint = zmq_endpoint

        ##################################################
        # Blocks
        ##################################################

        self.zmq_sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, zmq_endpoint, 100, True, (-1))
        self.pluto_source = iio.fmcomms2_source_fc32(uri if uri else iio.get_pluto_uri(), [True, True], buffer_size)
        self.pluto_source.set_len_tag_key('')
        self.pluto_source.set_frequency(center_freq)
        self.pluto_source.set_samplerate(samp_rate)
        self.pluto_source.set_gain_mode(0, 'manual')
        self.pluto_source.set_gain(0, gain)
        self.pluto_source.set_quadrature(True)
        self.pluto_source.set_rfdc(True)
        self.pluto_source.set_bbdc(True)
        self.pluto_source.set_filter_params('Auto', '', 0, 0)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.pluto_source, 0), (self.zmq_sink, 0))


    def get_uri(self):
        return self.uri

    def set_uri(self, uri):
        self.uri = uri

    def get_samp_rate(self):
        return self.samp_rate

    def set_samp_rate(self, samp_rate):
        self.samp_rate = samp_rate
        self.pluto_source.set_samplerate(self.samp_rate)

    def get_center_freq(self):
        return self.center_freq

    def set_center_freq(self, center_freq):
        self.center_freq = center_freq
        self.pluto_source.set_frequency(self.center_freq)

    def get_buffer_size(self):
        return self.buffer_size

    def set_buffer_size(self, buffer_size):
        self.buffer_size = buffer_size

    def get_gain(self):
        return self.gain

    def set_gain(self, gain):
        self.gain = gain
        self.pluto_source.set_gain(0, self.gain)

    def get_zmq_endpoint(self):
        return self.zmq_endpoint

    def set_zmq_endpoint(self, zmq_endpoint):
        self.zmq_endpoint = zmq_endpoint



def argument_parser():
    description = "PlutoSDR source (iio.fmcomms2_source_fc32) into a PUSH sink bound at zmq_endpoint. Gain mode and tracking loops are applied by hardware.device after construction (GRC enums cannot be variables); gr-iio 3.10.5 sets the RX RF bandwidth from the sample rate ('Auto' filter: the source has no bandwidth setter)."
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
        "--gain", dest="gain", type=eng_float, default=eng_notation.num_to_str(float(30)),
        help="Set RX manual gain (dB) [default=%(default)r]")
    parser.add_argument(
        "--zmq-endpoint", dest="zmq_endpoint", type=str, default="tcp://127.0.0.1:5711",
        help="Set RX IQ endpoint [default=%(default)r]")
    return parser


def main(top_block_cls=pluto_rx, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(uri=options.uri, samp_rate=options.samp_rate, center_freq=options.center_freq, buffer_size=options.buffer_size, gain=options.gain, zmq_endpoint=options.zmq_endpoint)

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
