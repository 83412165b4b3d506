/*
 * What a local Kafka broker has served, read from its own request metrics
 * (JMX) by attaching to its JVM: for every request type, how many requests
 * and how much time they took in total (ms: in the queue, on a handler
 * thread, waiting in purgatory, sending the answer), and how idle its
 * handler and network threads are.
 *
 *   java bench/BrokerRequests.java <broker pid>
 *
 * Prints "ready" once attached, then one JSON line of the counters (totals
 * since the broker started) for every line read on standard input; ends
 * when standard input closes. A benchmark takes one reading before and one
 * after its window and subtracts (bench/brokerRequests.ts). Run it with the
 * broker's own java (attach needs the same JVM).
 */
import com.sun.tools.attach.VirtualMachine;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class BrokerRequests {
  static final String[] TIMES = {"RequestQueueTimeMs", "LocalTimeMs", "RemoteTimeMs", "ResponseQueueTimeMs", "ResponseSendTimeMs", "TotalTimeMs"};

  public static void main(String[] args) throws Exception {
    VirtualMachine vm = VirtualMachine.attach(args[0]);
    String address = vm.startLocalManagementAgent();
    vm.detach();
    MBeanServerConnection jmx = JMXConnectorFactory.connect(new JMXServiceURL(address)).getMBeanServerConnection();
    System.out.println("ready");
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    while (in.readLine() != null) System.out.println(reading(jmx));
  }

  static String reading(MBeanServerConnection jmx) throws Exception {
    // request type → [count, then the total of each time in TIMES]
    Map<String, double[]> byType = new TreeMap<>();
    Set<ObjectName> names = jmx.queryNames(new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,*"), null);
    for (ObjectName n : names) {
      double[] row = byType.computeIfAbsent(n.getKeyProperty("request"), k -> new double[1 + TIMES.length]);
      row[0] += ((Number) jmx.getAttribute(n, "Count")).doubleValue();
    }
    for (String type : byType.keySet()) {
      for (int i = 0; i < TIMES.length; i++) {
        ObjectName n = new ObjectName("kafka.network:type=RequestMetrics,name=" + TIMES[i] + ",request=" + type);
        if (!jmx.isRegistered(n)) continue;
        double count = ((Number) jmx.getAttribute(n, "Count")).doubleValue();
        double mean = ((Number) jmx.getAttribute(n, "Mean")).doubleValue();
        byType.get(type)[1 + i] = count * mean;
      }
    }
    StringBuilder json = new StringBuilder("{\"requests\":{");
    String sep = "";
    for (Map.Entry<String, double[]> e : byType.entrySet()) {
      double[] row = e.getValue();
      json.append(sep).append('"').append(e.getKey()).append("\":{\"count\":").append((long) row[0]);
      for (int i = 0; i < TIMES.length; i++) json.append(",\"").append(TIMES[i]).append("\":").append(Math.round(row[1 + i]));
      json.append('}');
      sep = ",";
    }
    json.append("},\"handlerIdle\":").append(meter(jmx, "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent"));
    json.append(",\"networkIdle\":").append(gauge(jmx, "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent"));
    json.append(",\"messagesIn\":").append(count(jmx, "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec"));
    return json.append('}').toString();
  }

  static double meter(MBeanServerConnection jmx, String name) throws Exception {
    return ((Number) jmx.getAttribute(new ObjectName(name), "OneMinuteRate")).doubleValue();
  }

  static double gauge(MBeanServerConnection jmx, String name) throws Exception {
    return ((Number) jmx.getAttribute(new ObjectName(name), "Value")).doubleValue();
  }

  static long count(MBeanServerConnection jmx, String name) throws Exception {
    return ((Number) jmx.getAttribute(new ObjectName(name), "Count")).longValue();
  }
}
